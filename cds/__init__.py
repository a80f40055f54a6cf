"""Is gluteus medius weakness driving this knee, IT-band or low-back pain? The core library.

No Flask, shap, matplotlib, dask or numba is imported here (a test guards it).
"""

from .assess import assess as assess
from .assessment import Assessment as Assessment
from .errors import CdsError as CdsError
from .errors import IntegrityError as IntegrityError
from .errors import InvalidRecord as InvalidRecord
from .errors import ModelUnavailable as ModelUnavailable
from .model import Model as Model
from .model import load_model as load_model
from .validate import validate_record as validate_record

__all__ = [
    "Assessment",
    "CdsError",
    "IntegrityError",
    "InvalidRecord",
    "Model",
    "ModelUnavailable",
    "assess",
    "load_model",
    "validate_record",
]
