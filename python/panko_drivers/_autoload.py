"""Register panko's adapters with the systems they plug into, with no
change to the callers.

OSProfiler chooses a driver among the subclasses of
``osprofiler.drivers.base.Driver``, so ``panko_drivers.osprofiler`` must be
imported before ``base.get_driver("panko://...")`` is called, and services
import only osprofiler.  ``make install`` puts ``panko_drivers.pth`` in the
site-packages directory; Python runs its line at startup, which imports
this module, which puts one finder first on ``sys.meta_path``.  The finder
does nothing until ``osprofiler.drivers`` is imported: it lets the usual
finder find that package, wraps its loader, and when the package has run,
imports ``panko_drivers.osprofiler``; then it takes itself off
``sys.meta_path``.  A process that never imports osprofiler pays for this
module's import and one dictionary lookup per import, nothing else.

Not covered: ``python -S`` or ``-I`` (no .pth files are read) and virtual
environments without the system site-packages; there, import
``panko_drivers.osprofiler`` yourself.
"""

import sys

# package imported -> adapter to import right after it
HOOKS = {"osprofiler.drivers": "panko_drivers.osprofiler"}


def _import_adapter(name):
    try:
        __import__(name)
    except Exception as e:  # never break the system being extended
        import logging
        logging.getLogger(__name__).warning(
            "panko: could not load %s (%s: %s); its panko:// driver is not "
            "available", name, type(e).__name__, e)


class _Loader(object):
    """The package's own loader, then the adapter."""

    def __init__(self, loader, adapter):
        self._loader = loader
        self._adapter = adapter

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if not HOOKS:
            # (not from find_spec: the import system is iterating the list)
            for finder in [f for f in sys.meta_path if isinstance(f, _Finder)]:
                finder.remove()
        _import_adapter(self._adapter)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Finder(object):
    """First on sys.meta_path; answers only for the packages in HOOKS."""

    def find_spec(self, fullname, path=None, target=None):
        adapter = HOOKS.get(fullname)
        if adapter is None:
            return None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        del HOOKS[fullname]
        spec.loader = _Loader(spec.loader, adapter)
        return spec

    def remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def install():
    """Put the finder on sys.meta_path (once); a package already imported
    gets its adapter now."""
    for name in list(HOOKS):
        if name in sys.modules:
            _import_adapter(HOOKS.pop(name))
    if HOOKS and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
