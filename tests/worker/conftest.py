from tests.faults.helpers import cluster

__all__ = ["cluster"]
