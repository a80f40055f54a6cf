"""The store: what the service keeps, behind one interface (:class:`Store`).

* :mod:`.interface`: the :class:`Store` protocol and the values it takes (:class:`Insert`);
* :mod:`.records`: the rows every implementation writes the same way;
* :mod:`.sql`: the SQLAlchemy implementation (SQLite by default, PostgreSQL by URL);
* :mod:`.commit`: its group-commit writer;
* :mod:`.sqlite_writer`: its writes to a SQLite file, on one driver connection per process;
* :mod:`.memory`: the in-memory implementation (tests);
* :mod:`.config`: the store's configuration keys, its secret, :func:`init_app` and
  :func:`get_store`.

The tables themselves are declared in :mod:`cds.store_schema` (training reads them too).
"""

from .config import StoreConfig as StoreConfig
from .config import get_store as get_store
from .config import init_app as init_app
from .config import open_store as open_store
from .interface import AssessmentRow as AssessmentRow
from .interface import Insert as Insert
from .interface import KeyConflict as KeyConflict
from .interface import LinkedAssessment as LinkedAssessment
from .interface import Store as Store
from .interface import Work as Work
from .interface import now as now
from .interface import summary as summary
from .memory import MemoryStore as MemoryStore
from .sql import SQLStore as SQLStore
from .sql import assessment_links as assessment_links
from .sql import assessments as assessments
from .sql import audit as audit
from .sql import cards as cards
from .sql import feedback as feedback
from .sql import metadata as metadata
from .sql import outcomes as outcomes
from .sql import seen_tokens as seen_tokens
