"""Sections that name a class or function of your own package: Hydra's ``_target_``.

A section such as ``model: {_target_: my_pkg.nets.MyNet, hidden: 128}`` names what to build
with ``_target_``; every other key of the section is a keyword argument. This module reads such
sections as ``TargetConfig`` data, finds what a dotted name names, and checks the keyword
arguments against its signature. It never calls a target: the part that builds one (a network,
an env, a loss term, a sink) checks its kind here and then calls it.

Trust, the one rule: a config you compose (the command line, your ``--config-dir``) is yours,
so the targets it names are imported. A file written earlier (a checkpoint) is data: the
targets it names are imported only from ``trusted_packages`` (this project alone unless the
reader adds more), and the object a name resolves to must itself live in a trusted package
(``my_pkg.os.system`` reaches ``os.system`` through an alias, and is refused). Whatever is
trusted, an object of the wrong kind (``os.system`` named as a network) is refused before
anything is called.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from a3c_exp.config.checks import ConfigError

TARGET_KEY = "_target_"
"""The key that names what a section builds (Hydra's convention)."""

PROJECT_PACKAGE = "a3c_exp"
"""The package trusted by default when reading a file: this project's own."""

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class TrustError(ConfigError):
    """A file names code outside the trusted packages; the message names the key to set."""


def is_target_section(data: Any) -> bool:
    """Whether a config section names what it builds with ``_target_``."""
    return isinstance(data, Mapping) and TARGET_KEY in data


def split_target(
    data: Mapping[str, Any], key: str, reserved: Iterable[str] = ()
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A ``_target_`` section's target, its ``reserved`` keys (the framework's own, such as a
    loss term's ``weight``) and its keyword arguments (every other key).

    Raises ConfigError (one line) for a target that is no dotted name.
    """
    target = data.get(TARGET_KEY)
    if not isinstance(target, str) or not _DOTTED.match(target):
        raise ConfigError(
            f"{key}.{TARGET_KEY}={target!r}: must be a dotted name such as my_pkg.module.Name"
        )
    reserved = set(reserved)
    own = {k: v for k, v in data.items() if k in reserved}
    kwargs = {k: v for k, v in data.items() if k not in reserved and k != TARGET_KEY}
    return target, own, kwargs


def as_section(target: str, kwargs: Mapping[str, Any], **own: Any) -> dict[str, Any]:
    """A target back in Hydra's form, as configs and checkpoints hold it: ``_target_`` first,
    then the framework's keys, then the keyword arguments."""
    return {TARGET_KEY: target, **own, **kwargs}


def top_package(dotted: str) -> str:
    """The top-level package of a dotted name (``my_pkg`` of ``my_pkg.nets.MyNet``)."""
    return dotted.split(".", 1)[0]


def locate(target: str, key: str, trusted: Collection[str] | None = None) -> Any:
    """The object ``target`` names, imported only under the trust rule.

    ``trusted`` None: the name comes from the config in force (yours), any package may be
    imported. Otherwise the name's top-level package must be in ``trusted`` before anything is
    imported, and the object found must be defined in a trusted package too.
    Raises TrustError or ConfigError (one line naming ``key`` and the target).
    """
    where = f"{key}.{TARGET_KEY}={target!r}"
    if not _DOTTED.match(target):
        raise ConfigError(f"{where}: must be a dotted name such as my_pkg.module.Name")
    if trusted is not None and top_package(target) not in trusted:
        raise TrustError(
            f"{where}: the checkpoint names code of package {top_package(target)!r}, which is "
            f"not trusted; add trusted_packages=[{top_package(target)}] to import it "
            "(docs/extending.md)"
        )
    parts = target.split(".")
    module, attributes = None, parts
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and not name.startswith(err.name):
                raise ConfigError(f"{where}: importing {name} failed: {err}") from None
            continue
        except Exception as err:  # the module itself raised while importing
            raise ConfigError(f"{where}: importing {name} failed: {_first_line(err)}") from None
        attributes = parts[cut:]
        break
    if module is None:
        raise ConfigError(
            f"{where}: no module {top_package(target)!r} can be imported (is your package on "
            "PYTHONPATH or installed?)"
        )
    found: Any = module
    for index, attribute in enumerate(attributes):
        if not hasattr(found, attribute):
            owner = ".".join(parts[: len(parts) - len(attributes) + index])
            raise ConfigError(f"{where}: {owner} has no attribute {attribute!r}")
        found = getattr(found, attribute)
    if trusted is not None:
        home = getattr(found, "__module__", None) or ""
        if not home or top_package(home) not in trusted:
            raise TrustError(
                f"{where}: resolves to {_qualified(found)}, defined outside the trusted "
                f"packages ({', '.join(sorted(trusted))}); refused"
            )
    return found


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def require_subclass(obj: Any, base: type, key: str, target: str, what: str) -> type:
    """``obj`` if it is a class derived from ``base``; else ConfigError naming the target."""
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ConfigError(
            f"{key}.{TARGET_KEY}={target!r}: {_describe(obj)} is not {what}; refused "
            "(docs/extending.md)"
        )
    return obj


def require_class_or_function(
    obj: Any, base: type, key: str, target: str, what: str
) -> Callable[..., Any]:
    """``obj`` if it is a class derived from ``base`` or a plain Python function (whose result
    its caller checks); builtins, other classes and other callables are refused."""
    if (isinstance(obj, type) and issubclass(obj, base)) or inspect.isfunction(obj):
        return obj
    raise ConfigError(
        f"{key}.{TARGET_KEY}={target!r}: {_describe(obj)} is not {what}; refused "
        "(docs/extending.md)"
    )


def _describe(obj: Any) -> str:
    kind = "class" if isinstance(obj, type) else type(obj).__name__
    return f"{_qualified(obj)} (a {kind})"


def check_arguments(
    obj: Callable[..., Any],
    kwargs: Mapping[str, Any],
    key: str,
    target: str,
    supplied: Iterable[str] = (),
) -> None:
    """Check a section's keys against ``obj``'s signature, as strictly as our own sections.

    ``supplied``: the arguments the framework passes itself (a network's ``obs_shape`` and
    ``n_actions``): the target must take them, and the section may not set them. A key the
    target does not take, or a required argument the section lacks, is refused in one line.
    """
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key}.{TARGET_KEY}={target!r}: its signature cannot be read; refused"
        ) from None
    parameters = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    supplied = tuple(supplied)
    for name in supplied:
        if name in kwargs:
            raise ConfigError(f"{key}.{name}: set by the run itself, not by the config")
        if name not in parameters and not open_ended:
            raise ConfigError(
                f"{key}.{TARGET_KEY}={target!r}: must take the argument {name!r} (the run "
                f"passes {', '.join(supplied)})"
            )
    allowed = [n for n in parameters if n not in supplied]
    for name in kwargs:
        if name not in parameters and not open_ended:
            takes = ", ".join(allowed) if allowed else "no other argument"
            raise ConfigError(f"{key}.{name}: not an argument of {target}; it takes: {takes}")
    for name, parameter in parameters.items():
        if (
            parameter.default is parameter.empty
            and parameter.kind is not parameter.POSITIONAL_ONLY
            and name not in kwargs
            and name not in supplied
        ):
            raise ConfigError(f"{key}.{name}: required by {target} (no default); set it")
