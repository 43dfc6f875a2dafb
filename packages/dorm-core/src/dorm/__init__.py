"""dorm: a small Django-style ORM with plugins."""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # adds the dorm/ dirs of other distributions

__version__ = "4.3.0"

__all__ = ["__version__"]
