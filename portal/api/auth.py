"""The API's tokens: every token, access or refresh, dies with its account's password or activity.

simplejwt checks CHECK_REVOKE_TOKEN's password fingerprint when an access token is used, but not
when a refresh token mints one: without this check a refresh token taken before a password
change would go on minting access tokens (refused, but a 200 to the thief) for its whole life.
Both read the account with ``token_account``: one query per request, the roles with it.
"""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from portal.roles import account_with_roles


def token_account(token: Token):
    """The active account a token names, issued since its password last changed (with its roles)."""
    user = account_with_roles(**{api_settings.USER_ID_FIELD: token.get(api_settings.USER_ID_CLAIM)})
    if user is None or not user.is_active:
        raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
    if token.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise AuthenticationFailed("The password changed after this token was issued: log in again.", "password_changed")
    return user


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token: Token):
        return token_account(validated_token)


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    def validate(self, attrs: dict) -> dict:
        token_account(RefreshToken(attrs["refresh"]))
        return super().validate(attrs)


class JWTScheme(SimpleJWTScheme):
    """The API description's bearer scheme for it: drf-spectacular matches simplejwt's class exactly."""

    target_class = JWTAuthentication
