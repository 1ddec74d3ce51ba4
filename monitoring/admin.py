from __future__ import annotations

# --- batch monitor (DOMAIN §1) ---
from monitoring import batch_admin  # noqa: F401  - registers its admins
