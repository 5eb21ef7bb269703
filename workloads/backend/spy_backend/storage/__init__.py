"""Storage: key design (pure), entity mapping (pure), and the Table Storage client."""

from spy_backend.storage.keys import Cursor
from spy_backend.storage.tables import (
    InsertOutcome,
    Rejection,
    StorageUnavailableError,
    TableStore,
)

__all__ = ["Cursor", "InsertOutcome", "Rejection", "StorageUnavailableError", "TableStore"]
