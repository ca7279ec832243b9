"""The store a deployment's settings name: a local directory, or an S3-compatible bucket."""

from __future__ import annotations

from core.settings import Settings
from core.storage import ArtifactStore, Store


def open_store(settings: Settings) -> Store:
    """The artifact store of these settings (DYNGEN_STORAGE_URL, else DYNGEN_STORAGE_DIR)."""
    if settings.storage_url is None:
        return ArtifactStore(settings.store_dir)
    from core.objectstore import S3Location, S3Options, S3Store

    options = S3Options(
        timeout_seconds=settings.storage_timeout_seconds,
        retries=settings.storage_retries,
        public_endpoint=settings.storage_public_endpoint,
        staging_grace_seconds=settings.orphan_grace_seconds,
        presign_seconds=settings.presign_seconds,
    )
    return S3Store(S3Location.parse(settings.storage_url), settings.scratch_root, options)
