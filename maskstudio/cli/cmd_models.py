"""``maskstudio models``: list, install, import, verify and remove pretrained models.

    maskstudio models list                      # installed / available / active, sizes, device
    maskstudio models info ID                   # sources, licence, files, expected layout
    maskstudio models install ID                # download (progress bar, resume, retry), check, convert
    maskstudio models import ID FILE [FILE...]  # a file you downloaded by hand (or a folder of directions)
    maskstudio models verify [ID]               # SHA-256 + keys/shapes of installed (and shipped) models
    maskstudio models remove ID

Every subcommand takes ``--models-dir DIR`` (default: ``$MASKSTUDIO_MODELS_DIR``, else the
per-user data folder). Progress goes to stderr; results to stdout.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from maskstudio.errors import ConfigError

__all__ = ["register", "ProgressBar"]


def register(subparsers: argparse._SubParsersAction) -> None:
    dir_help = "installed-models folder (default: $MASKSTUDIO_MODELS_DIR or the per-user data folder)"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the action it wins, otherwise the value given before it stays
    common.add_argument("--models-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR", help=dir_help)
    p = subparsers.add_parser("models", help="list / install / import / verify / remove pretrained models",
                              description="List, install, import, verify and remove pretrained models.")
    p.add_argument("--models-dir", type=Path, default=None, metavar="DIR", help=dir_help)
    sub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)

    pl = sub.add_parser("list", parents=[common], help="known models: installed, available, active")
    pl.add_argument("--role", default=None, help="only this role (dmn, parser, stylegan2, ...)")
    pl.add_argument("--json", action="store_true", help="machine-readable output (one JSON document)")
    pl.set_defaults(func=_list)

    pi = sub.add_parser("info", parents=[common], help="sources, licence and file layout of one model")
    pi.add_argument("id")
    pi.set_defaults(func=_info)

    pin = sub.add_parser("install", parents=[common], help="download, check and install a model")
    pin.add_argument("id")
    pin.add_argument("--force", action="store_true", help="reinstall over an installed copy")
    pin.add_argument("--timeout", type=float, default=30.0, metavar="S", help="network timeout in seconds (30)")
    pin.add_argument("--retries", type=int, default=3, help="retries after a network failure (3)")
    pin.add_argument("--url", action="append", default=[], metavar="[FILE=]URL",
                     help="download FILE from this mirror URL instead (repeatable)")
    pin.add_argument("--no-progress", action="store_true", help="no progress bar")
    pin.set_defaults(func=_install)

    pim = sub.add_parser("import", parents=[common], help="install from file(s) downloaded by hand")
    pim.add_argument("id")
    pim.add_argument("files", nargs="+", type=Path, metavar="FILE")
    pim.add_argument("--force", action="store_true", help="replace an installed copy")
    pim.add_argument("--no-progress", action="store_true", help="no progress bar")
    pim.set_defaults(func=_import)

    pv = sub.add_parser("verify", parents=[common], help="check installed (and shipped) models")
    pv.add_argument("id", nargs="?", default=None)
    pv.add_argument("--quick", action="store_true", help="checksums only (do not load the networks)")
    pv.set_defaults(func=_verify)

    pr = sub.add_parser("remove", parents=[common], help="delete an installed model")
    pr.add_argument("id")
    pr.set_defaults(func=_remove)

    ph = sub.add_parser("rehash-shipped", help="(maintainers) record SHA-256 + size of the shipped "
                                               "checkpoints/ files in checkpoints/registry.json")
    ph.set_defaults(func=_rehash)


def _settings(args):
    from maskstudio.settings import Settings

    return Settings.from_env(models_dir=args.models_dir)


def _store(args, **kw):
    from maskstudio.io.store import ModelStore

    return ModelStore.from_settings(_settings(args), **kw)


class ProgressBar:
    """A one-line text progress bar for :class:`maskstudio.io.download.Progress` events."""

    def __init__(self, stream=None, width: int = 28, min_interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._key: tuple[str, str] | None = None   # (stage, file) of the line being drawn
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False

    def __call__(self, ev) -> None:
        from maskstudio.io.download import format_bytes

        key = (ev.stage, ev.file)
        now = time.monotonic()
        final = ev.total is not None and ev.done >= ev.total
        if key == self._key and not final and not ev.message and now - self._last < self.min_interval_s:
            return
        if key != self._key and self._open:
            self.stream.write("\n")
            self._open = False
        self._key, self._last = key, now
        frac = ev.fraction
        if frac is None:
            bar = "[" + "?" * 3 + " " * (self.width - 3) + "]"
            amount = format_bytes(ev.done) if ev.stage in ("download", "checksum") and ev.done else ""
        else:
            fill = int(round(frac * self.width))
            bar = "[" + "#" * fill + "." * (self.width - fill) + f"] {frac * 100:5.1f}%"
            amount = f"{format_bytes(ev.done)} / {format_bytes(ev.total)}" if ev.stage in ("download", "checksum") else ""
        line = f"{ev.stage:<8} {ev.file} {bar} {amount}".rstrip()
        if ev.message:
            line += f"  {ev.message}"
        if self._tty:
            self.stream.write("\r" + line + "\x1b[K")
            self._open = True
            if final or ev.stage == "done":
                self.stream.write("\n")
                self._open = False
        elif final or ev.message or ev.stage in ("convert", "done") or key != getattr(self, "_printed", None):
            self.stream.write(line + "\n")
            self._printed = key
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
            self.stream.flush()


def _active_ids(settings) -> set[str]:
    """Ids the engine would use for each role right now (user-installed before shipped)."""
    try:
        from maskstudio.engine.models import ROLE_ARCHS, ModelSet

        ms = ModelSet.from_settings(settings)
        out = {m.id for role in ROLE_ARCHS for m in [ms.first(role)] if m is not None}
        return out
    except Exception:  # listing must work even when the engine cannot scan (reported elsewhere)
        return set()


def _list(args) -> int:
    from maskstudio.io.download import format_bytes
    from maskstudio.settings import resolve_device

    settings = _settings(args)
    store = _store(args)
    rows = [s for s in store.list() if args.role is None or s.entry.role == args.role]
    if args.role is not None and not rows:
        raise ConfigError(f"no model has role {args.role!r}")
    active = _active_ids(settings)
    try:
        device = resolve_device(settings.device)
    except Exception as e:  # pragma: no cover - torch problems
        device = f"unknown ({e})"
    out = sys.stdout
    if args.json:
        import json

        doc = {"models_dir": str(store.models_dir), "device": device, "models": [
            {"id": s.id, "title": s.entry.title, "role": s.entry.role, "arch": s.entry.arch, "state": s.state,
             "active": s.id in active, "size_bytes": s.size_bytes, "partial_bytes": s.partial_bytes,
             "path": None if s.path is None else str(s.path), "licence": s.entry.licence_name,
             "page": s.entry.page} for s in rows]}
        out.write(json.dumps(doc, indent=2) + "\n")
        return 0
    out.write(f"models folder: {store.models_dir}\ndevice: {device}\n\n")
    header = ("ID", "ROLE", "STATE", "ACTIVE", "SIZE", "LICENCE")
    table = []
    for s in rows:
        state = s.state
        if s.partial_bytes and state != "installed":
            state += f" (partial {format_bytes(s.partial_bytes)})"
        table.append((s.id, s.entry.role, state, "*" if s.id in active else "",
                      format_bytes(s.size_bytes) if s.size_bytes is not None else "?", s.entry.licence_name))
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for r in [header, *table]:
        out.write("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    out.write("\nstates: installed | shipped (comes with MaskStudio) | available (`models install ID`) | "
              "manual (download by hand, then `models import ID FILE`)\n")
    return 0


def _info(args) -> int:
    store = _store(args)
    e = store.entry(args.id)
    s = store.status(args.id)
    w = sys.stdout.write
    w(f"{e.id}: {e.title}\nrole: {e.role}   arch: {e.arch or '-'}   state: {s.state}\n")
    if s.path is not None:
        w(f"location: {s.path}\n")
    w(f"licence: {e.licence_name}" + (f" ({e.licence['url']})" if e.licence.get("url") else "") + "\n")
    if e.licence.get("note"):
        w(f"  {e.licence['note']}\n")
    for k, v in e.source.items():
        if v:
            w(f"{k}: {v}\n")
    if e.config:
        w(f"config: {e.config}\n")
    if e.expected:
        w(f"expected layout: {e.expected['keys']} keys, {e.expected['parameters']:,} parameters\n")
    w("files:\n")
    for f in e.files:
        w(f"  {f.name}  [{f.layout}]  sha256: {f.sha256 or 'unknown'}\n")
        for u in f.urls:
            w(f"    {u}\n")
    if e.notes:
        w(f"notes: {e.notes}\n")
    if s.record:
        w(f"installed: {s.record.get('installed_at')} from {s.record.get('source')}\n")
        for o in s.record.get("original_files", []):
            w(f"  original {o['name']}: sha256 {o['sha256']} ({o['size_bytes']} bytes)"
              f"{' checksum verified' if o.get('checksum_verified') else ''}\n")
    return 0


def _licence_note(e) -> str:
    url = e.licence.get("url")
    return f"{e.id}: licence {e.licence_name}" + (f" ({url})" if url else "") + " — check it fits your use\n"


def _install(args) -> int:
    store = _store(args, timeout_s=args.timeout, retries=args.retries)
    urls = {}
    for spec in args.url:
        name, sep, url = spec.partition("=")
        if not sep or "://" in name:
            name, url = "", spec
        urls[name] = url
    sys.stderr.write(_licence_note(store.check_installable(args.id, args.force, urls or None)))
    bar = None if args.no_progress else ProgressBar()
    try:
        s = store.install(args.id, progress=bar, force=args.force, urls=urls or None)
    finally:
        if bar is not None:
            bar.close()
    print(f"installed {s.id} in {s.path}")
    return 0


def _import(args) -> int:
    store = _store(args)
    e = store.entry(args.id)
    if not e.shipped and not (store.is_installed(args.id) and not args.force):
        sys.stderr.write(_licence_note(e))
    bar = None if args.no_progress else ProgressBar()
    try:
        s = store.import_files(args.id, args.files, progress=bar, force=args.force)
    finally:
        if bar is not None:
            bar.close()
    print(f"imported {s.id} into {s.path}")
    return 0


def _verify(args) -> int:
    store = _store(args)
    results = store.verify(args.id, deep=not args.quick)
    if not results:
        print(f"nothing installed in {store.models_dir}")
        return 0
    bad = 0
    for r in results:
        if r.ok:
            print(f"ok      {r.id}")
        else:
            bad += 1
            print(f"FAILED  {r.id}: {r.problem}")
    return 1 if bad else 0


def _remove(args) -> int:
    store = _store(args)
    folder = store.remove(args.id)
    print(f"removed {args.id} ({folder})")
    return 0


def _rehash(args) -> int:
    from maskstudio.io.registry import REGISTRY_PATH, record_shipped_hashes

    changed = record_shipped_hashes()
    print(f"updated {', '.join(changed)} in {REGISTRY_PATH}" if changed else f"{REGISTRY_PATH} is up to date")
    return 0
