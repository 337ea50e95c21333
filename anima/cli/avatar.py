"""``anima avatar add|list|remove``: manage prepared avatars."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load OpenCV or the face finder.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``avatar`` sub-command's arguments."""
    avatar = sub.add_parser("avatar", help="manage prepared avatars")
    asub = avatar.add_subparsers(dest="avatar_command", required=True)
    add = asub.add_parser(
        "add", help="prepare an avatar from a portrait photo or a 5-60 s video of the person"
    )
    add.add_argument("photo", type=Path)
    add.add_argument("--name", required=True)
    add.add_argument("--replace", action="store_true", help="overwrite an avatar of the same name")
    add.add_argument(
        "--consent-by",
        metavar="NAME",
        help="who attests that the pictured person consented to this avatar (recorded with it)",
    )
    asub.add_parser("list", help="list prepared avatars")
    rm = asub.add_parser("remove", help="delete a prepared avatar")
    rm.add_argument("name")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Add, list or remove an avatar; exit code 0."""
    from anima.cli.common import limits
    from anima.render.avatar import AvatarStore, Consent, prepare_avatar, read_photo
    from anima.render.video_avatar import VIDEO_SUFFIXES, add_video_avatar

    store = AvatarStore(settings.avatar_dir)
    if args.avatar_command == "list":
        for name in store.names():
            print(name)
        return 0
    if args.avatar_command == "remove":
        store.remove(args.name)
        err.print(f"removed avatar {args.name!r}")
        return 0
    started = time.perf_counter()
    r = settings.render
    consent = Consent.now(args.consent_by) if args.consent_by is not None else None
    if args.photo.suffix.lower() in VIDEO_SUFFIXES:
        with err.status("finding the face on every frame…"):
            _, folder = add_video_avatar(
                store,
                args.photo,
                args.name,
                size=r.size,
                margin=r.face_margin,
                replace=args.replace,
                consent=consent,
            )
        err.print(f"avatar {args.name!r} ready in {folder} ({time.perf_counter() - started:.1f} s)")
        return 0
    with err.status("finding the face…"):
        avatar = prepare_avatar(
            read_photo(args.photo, limits(settings)),
            args.name,
            size=r.size,
            margin=r.face_margin,
            min_face_pixels=settings.limits.min_face_pixels,
        )
        avatar.consent = consent
        folder = store.add(avatar, replace=args.replace)
    for note in avatar.notes:
        err.print(f"note: {note}")
    if consent is None:
        err.print(
            "note: no likeness consent recorded (--consent-by NAME); the server and SDK refuse "
            "this avatar while limits.require_consent is on"
        )
    else:
        err.print(f"consent attested by {consent.by} at {consent.at}")
    err.print(f"avatar {args.name!r} ready in {folder} ({time.perf_counter() - started:.1f} s)")
    return 0
