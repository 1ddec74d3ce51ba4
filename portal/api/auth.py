"""The API's tokens: a refresh token dies with its account's password, like the access tokens.

simplejwt checks CHECK_REVOKE_TOKEN's password fingerprint when an access token is used, but not
when a refresh token mints one: without this check a refresh token taken before a password
change would go on minting access tokens (refused, but a 200 to the thief) for its whole life.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    def validate(self, attrs: dict) -> dict:
        refresh = RefreshToken(attrs["refresh"])
        user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)}).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        if refresh.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The password changed after this token was issued: log in again.", "password_changed")
        return super().validate(attrs)
