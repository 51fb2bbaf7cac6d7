"""The loader: the configuration's layers (TOML file, ``DVCSYNC_…`` environment, command-line
overrides), relative paths made absolute against the file's folder, ``[tenants.<code>]`` tables
merged over the shared values, and the provenance of every key (``Settings.origin``, shown by
``dvcsync config show``). Errors name the file or variable and the key as the operator wrote them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource

from ._errors import ConfigError
from ._tenancy import TENANT_CODE, state_identity, tenant_state_url

CONFIG_ENV = "DVCSYNC_CONFIG"
DEFAULT_CONFIG = Path("dvcsync.toml")


@dataclass(frozen=True)
class Layers:
    """The configuration read but not yet validated: the values of file < environment <
    overrides merged (without ``tenants``), the raw ``[tenants]`` tables, where each key came
    from, and what to name in a message (the file, or "configuration")."""

    merged: dict[str, Any]
    tables: Any
    origins: dict[str, str]
    where: str


def read_layers(
    model: type[BaseSettings], path: str | Path | None, use_env: bool, overrides: dict[str, Any]
) -> Layers:
    """Read ``path`` (or ``$DVCSYNC_CONFIG``, or ``./dvcsync.toml`` if present), then the
    environment, then ``overrides``, each winning over the one before; see ``Settings.load``."""
    file = _config_path(path, use_env)
    data: dict[str, Any] = {}
    where = str(file) if file else "configuration"
    if file is not None:
        data = _read_toml(file)
        _resolve_paths(model, data, file.resolve().parent)
    env: dict[str, Any] = {}
    env_names: dict[str, str] = {}
    if use_env:
        declared = data.get("tenants")
        env, env_names = _environment(model, set(declared) if isinstance(declared, dict) else set())
    origins: dict[str, str] = {}
    for key in _leaves(data):
        origins[key] = f"file {file}"
    for key in _leaves(env):
        origins[key] = f"environment {env_names.get(key, '')}".rstrip()
    for key in _leaves(overrides):
        origins[key] = "command line"
    merged = _merge(_merge(data, env), overrides)
    tables = merged.pop("tenants", None) or {}
    return Layers(merged, tables, origins, where)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def validation_message(exc: ValidationError, origins: dict[str, str], where: str, tenant: str = "") -> str:
    """One line per error: the file (or variable) and the key, as the operator wrote them."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error.get("loc", ())]
        key = ".".join(loc)
        msg = error.get("msg", "invalid").removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            msg = "unknown key"
        if tenant:
            source = origins.get(f"tenants.{tenant}.{key}", origins.get(key, where))
            section = ".".join(["tenants", tenant, *loc[:-1]]) if len(loc) > 1 else f"tenants.{tenant}"
            shown = f"[{section}] {loc[-1] if len(loc) > 1 else key or '(table)'}"
        else:
            source = origins.get(key, where)
            shown = key
        source = source.removeprefix("file ") if source.startswith("file ") else source
        lines.append(f"{source}: {shown}: {msg}")
    return "\n".join(lines)


def tenant_tables(tables: Any, where: str) -> dict[str, dict[str, Any]]:
    """The raw ``[tenants.<code>]`` tables, their codes checked (the sections are checked by
    building each tenant's settings)."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: tenants: expected [tenants.<code>] tables")
    problems = []
    for code, table in tables.items():
        if not TENANT_CODE.match(str(code)):
            problems.append(
                f"{where}: [tenants.{code}]: a tenant code is 1-32 of a-z, 0-9, '-' and '_',"
                " starting with a letter or digit"
            )
        elif not isinstance(table, dict):
            problems.append(f"{where}: tenants.{code}: expected a table of sections")
        elif "tenants" in table:
            problems.append(f"{where}: [tenants.{code}] tenants: tenants do not nest")
    if problems:
        raise ConfigError("\n".join(problems))
    return {str(code): table for code, table in sorted(tables.items())}


def tenant_layer(
    layers: Layers, code: str, table: dict[str, Any], shared_state_url: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """One tenant's values (its table deep-merged over the shared ones, its state partitioned
    unless it names its own) and where each came from; a ConfigError for a state that cannot be
    partitioned."""
    own = _merge({}, table)
    derived = "url" not in (own.get("state") or {})
    if derived:
        try:
            url = tenant_state_url(shared_state_url, code)
        except ValueError as exc:
            where = layers.origins.get("state.url", layers.where).removeprefix("file ")
            raise ConfigError(f"{where}: {exc}") from None
        own = _merge(own, {"state": {"url": url}})
    prefix = f"tenants.{code}."
    origins = dict(layers.origins)
    for key, origin in layers.origins.items():
        if key.startswith(prefix):
            origins[key[len(prefix) :]] = f"{origin} [tenants.{code}]"
    if derived:
        origins["state.url"] = f"derived from state.url for tenant {code}"
    own_origins = {k: v for k, v in origins.items() if not k.startswith("tenants.")}
    return _merge(layers.merged, own), own_origins


def shared_state_problems(states: dict[str, tuple[str, str]], where: str) -> list[str]:
    """Tenants whose states are one (``states``: code -> (state URL, its origin)), each pair
    named once: each tenant needs its own."""
    problems = []
    seen: dict[tuple[str, ...], str] = {}
    for code, (url, origin) in states.items():
        identity = state_identity(url)
        if identity in seen:
            problems.append(
                f"{where}: tenants {seen[identity]} and {code} share one state"
                f" ({origin}): each tenant needs its own [tenants.<code>.state] url"
            )
        seen.setdefault(identity, code)
    return problems


# Variables with the prefix that are not settings: the config file's path and test switches.
_NOT_SETTINGS = frozenset(
    {
        "DVCSYNC_CONFIG",
        "DVCSYNC_TENANT",
        "DVCSYNC_DEBUG",  # the CLI's: print the traceback of a failure
        "DVCSYNC_REQUIRE_POSTGRES",
        "DVCSYNC_REQUIRE_CHROMIUM",
        "DVCSYNC_REQUIRE_MARIADB",
        "DVCSYNC_REQUIRE_FAKETIME",
        "DVCSYNC_HYPOTHESIS",
    }
)
_PREFIX = "DVCSYNC_"


def _is_setting_variable(name: str) -> bool:
    # DVCSYNC_REQUIRE_*: the test harness's (what may not skip in CI), never a setting
    upper = name.upper()
    if not upper.startswith(_PREFIX) or upper in _NOT_SETTINGS:
        return False
    return not upper.startswith("DVCSYNC_REQUIRE_")


@dataclass
class _Variables:
    """The ``DVCSYNC_`` variables sorted out: the key each names, the spellings each declared
    tenant's code has in them, and those naming no key (unknown) or no declared tenant (strays)."""

    names: dict[str, str] = field(default_factory=dict)
    spellings: dict[str, set[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)

    def add(self, model: type[BaseModel], name: str, declared: set[str] | frozenset[str]) -> None:
        upper = name.upper()
        parts = upper[len(_PREFIX) :].lower().split("__")
        if parts[0] == "tenants" and len(parts) > 2:  # DVCSYNC_TENANTS__<CODE>__<SECTION>__<KEY>
            key = _known_key(model, parts[2:]) if parts[2] != "tenants" else None
            if key is not None:
                code = _declared_tenant(parts[1], declared)
                if code is None:
                    self.strays.append(name)
                    return
                self.spellings.setdefault(code, set()).add(upper.split("__")[1])
                key = f"tenants.{code}.{key}"
        elif parts == ["tenants"]:
            key = None  # whole tenants as JSON would declare tenants outside the file
        else:
            key = _known_key(model, parts)
        if key is None:
            self.unknown.append(name)
        else:
            self.names[key] = name

    def problems(self, declared: set[str] | frozenset[str]) -> list[str]:
        problems = [
            f"environment: {n}: no such setting (sections and keys are joined by '__')" for n in self.unknown
        ]
        for name in self.strays:
            code = name.upper()[len(_PREFIX) :].split("__")[1]
            problems.append(
                f"environment: {name}: no tenant {code!r} is declared in the file"
                + (
                    f" (declared: {', '.join(sorted(declared))};"
                    if declared
                    else " (no [tenants.<code>] tables;"
                )
                + " a tenant's variables spell its code in capitals with '_' for '-',"
                " e.g. DVCSYNC_TENANTS__TINH_B__… for tinh-b)"
            )
        return problems


def _env_source(cls: type[BaseSettings], prefix: str) -> EnvSettingsSource:
    return EnvSettingsSource(
        cls, case_sensitive=False, env_prefix=prefix, env_nested_delimiter="__", env_parse_none_str=None
    )


def _environment(
    cls: type[BaseSettings], declared: set[str] | frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``DVCSYNC_`` variables as nested values (parsed as pydantic-settings does: JSON for
    lists and tables), and which variable gave each key; a variable naming no key is an error.

    ``DVCSYNC_TENANTS__<CODE>__…`` sets a value of a tenant ``declared`` by a ``[tenants.<code>]``
    table of the file, ``<CODE>`` being its code in capitals with each ``-`` written ``_`` (shells
    cannot spell ``-``); a variable naming any other tenant is an error, never a new tenant built
    from defaults (``TINH_B`` for ``tinh-b`` once made a fourth tenant ``tinh_b``)."""
    found = _Variables()
    for name in os.environ:
        if _is_setting_variable(name):
            found.add(cls, name, declared)
    problems = found.problems(declared)
    if problems:
        raise ConfigError("\n".join(problems))
    source = _env_source(cls, _PREFIX)
    try:
        values = source()
        values.pop("tenants", None)  # pydantic-settings' own reading keeps the variables' spelling
        if found.spellings:
            values["tenants"] = _tenant_environment(cls, found.spellings)
    except Exception as exc:  # a value pydantic-settings cannot parse (bad JSON for a list)
        raise ConfigError(f"environment: {exc}") from None
    return values, found.names


def _tenant_environment(cls: type[BaseSettings], spellings: dict[str, set[str]]) -> dict[str, Any]:
    """Each tenant's variables parsed as the top level's are (lists and tables as JSON)."""
    tables: dict[str, Any] = {}
    for code, spelt in sorted(spellings.items()):
        for prefix in sorted(spelt):
            own = _env_source(cls, f"{_PREFIX}TENANTS__{prefix}__")()
            own.pop("tenants", None)
            tables[code] = _merge(tables.get(code) or {}, own)
    return tables


def _declared_tenant(spelt: str, declared: set[str] | frozenset[str]) -> str | None:
    """The declared tenant a variable's ``<CODE>`` (lower-cased) names: the code itself, else the
    one code that reads the same with ``-`` as ``_``; None for none, or for two such codes."""
    if spelt in declared:
        return spelt
    matches = [code for code in declared if code.replace("-", "_") == spelt.replace("-", "_")]
    return matches[0] if len(matches) == 1 else None


def _known_key(model: type[BaseModel], parts: list[str]) -> str | None:
    """``["portal", "timeout"]`` → ``"portal.timeout"`` if the model has it; a table (dict) field
    takes any sub-key."""
    current: Any = model
    path = []
    for index, part in enumerate(parts):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        path.append(part)
        annotation = field.annotation
        nested = _model_in(annotation)
        if nested is not None:
            current = nested
            continue
        if _is_table(annotation):
            return ".".join(path)  # a table takes any sub-key
        return ".".join(path) if index == len(parts) - 1 else None
    return ".".join(path) if path else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_table(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict or annotation is dict


def _is_path(annotation: Any) -> bool:
    return annotation is Path or Path in (getattr(annotation, "__args__", ()) or ())


_URL_KEYS = {("province", "source_url"), ("province", "sink_url"), ("state", "url")}


def _resolve_paths(
    model: type[BaseModel], data: dict[str, Any], base: Path, prefix: tuple[str, ...] = ()
) -> None:
    """Relative paths and relative SQLite files in a config file, made absolute against ``base``."""
    for name, value in list(data.items()):
        if not prefix and name == "tenants" and isinstance(value, dict):
            for table in value.values():  # each tenant's table holds sections as the top level does
                if isinstance(table, dict):
                    _resolve_paths(model, table, base)
            continue
        field = model.model_fields.get(name)
        if field is None:
            continue  # reported as an unknown key by validation
        nested = _model_in(field.annotation)
        if nested is not None and isinstance(value, dict):
            _resolve_paths(nested, value, base, (*prefix, name))
        elif (
            _is_path(field.annotation) and isinstance(value, str) and value and not Path(value).is_absolute()
        ):
            data[name] = str(base / value)
        elif (*prefix, name) in _URL_KEYS and isinstance(value, str):
            data[name] = _absolute_sqlite(value, base)


def _absolute_sqlite(url: str, base: Path) -> str:
    for scheme in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            if (
                rest
                and not rest.startswith("/")
                and not rest.startswith(":memory:")
                and not rest.startswith("file:")
            ):
                return f"{scheme}{base / rest}"
    return url


def _leaves(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not name.endswith("transport_by_service"):
            out.extend(_leaves(value, name + "."))
        else:
            out.append(name)
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_path(path: str | Path | None, use_env: bool = True) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV) if use_env else None
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
