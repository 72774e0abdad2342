"""Encryption of stored secrets (provider API keys) with rotatable Fernet keys."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings


class CryptoError(Exception):
    """A secret cannot be encrypted or decrypted with the configured keys."""


def _fernet(settings: Settings) -> MultiFernet:
    if settings.encryption_keys is None:
        raise CryptoError("ENCRYPTION_KEYS is not set")
    keys = [k.strip() for k in settings.encryption_keys.get_secret_value().split(",") if k.strip()]
    if not keys:
        raise CryptoError("ENCRYPTION_KEYS holds no key")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:  # a malformed key: say which setting, never echo the key
        raise CryptoError("ENCRYPTION_KEYS holds a malformed Fernet key") from exc


def check_keys(settings: Settings) -> None:
    """Raise CryptoError when ENCRYPTION_KEYS is unset, empty or malformed."""
    _fernet(settings)


def encrypt(settings: Settings, plaintext: str) -> str:
    """Encrypt with the newest key (the first in ENCRYPTION_KEYS)."""
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    """Decrypt with whichever configured key made the token."""
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise CryptoError("stored secret cannot be decrypted with ENCRYPTION_KEYS") from exc


def rotate(settings: Settings, token: str) -> str:
    """Re-encrypt a token with the newest key, so old keys can be retired."""
    try:
        return _fernet(settings).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise CryptoError("stored secret cannot be decrypted with ENCRYPTION_KEYS") from exc


def new_key() -> str:
    """A fresh Fernet key for ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()
