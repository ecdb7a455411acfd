from nar.core.registry import Registry

PRIORS: Registry = Registry("prior")
