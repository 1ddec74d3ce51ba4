# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint install clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The dev checkout's settings for manage.py commands typed beside a running portal (manage.py reads it).
.env:
	printf '# Written by make run: manage.py reads it in this dev checkout (the environment wins).\nDEBUG=1\n' > .env

# The portal with its embedded defaults (SQLite, django-q2's ORM broker, the
# local queue backend) and demo data; one Ctrl-C stops every process. One web
# worker (of WEB_THREADS threads) and one django-q2 worker, not the Procfile's
# 2 and 2: a workstation's portal in less memory (bench/memory.py); the
# environment wins.
run: $(STAMP) .env
	export DEBUG=$${DEBUG:-1} WEB_WORKERS=$${WEB_WORKERS:-1} Q_WORKERS=$${Q_WORKERS:-1} PATH="$(BIN):$$PATH"; \
	python manage.py migrate --noinput && \
	python manage.py create_demo_admin && \
	python manage.py load_demo && \
	python manage.py setup_schedules && \
	python manage.py collectstatic --noinput --verbosity 0 && \
	echo "Portal on http://$${WEB_BIND:-127.0.0.1:8000}/monitor/ (admin at /admin/, API at /api/v1/, health at /healthz, metrics at /metrics)" && \
	exec honcho start -f Procfile

test: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var/test
