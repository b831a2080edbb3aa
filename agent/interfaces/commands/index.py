"""`atelier index ...`: build, change, search and describe an image index under ATELIER_HOME."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from agent.interfaces.commands.arguments import (add_engine_options, check_engine_options, hit_count,
                                     positive_int, seed_value)
from agent.errors import AtelierError, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="index images by CLIP embedding and search them by text or image")
    commands = parser.add_subparsers(dest="index_command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", metavar="NAME", default=None,
                        help="a named index (ATELIER_HOME/indexes/NAME) instead of the default "
                             "one (ATELIER_HOME/index)")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default=None,
                       help="open_clip model: a name such as ViT-B-32 (with --pretrained) or "
                            "local-dir:PATH; default: the shipped shapes-clip")
    model.add_argument("--pretrained", default=None, metavar="TAG_OR_FILE",
                       help="pretrained tag or weights file for a named --model")
    tags = argparse.ArgumentParser(add_help=False)
    tags.add_argument("--tags", nargs="+", default=[], metavar="TAG",
                      help="tags for every image added (space- or comma-separated)")
    factory = argparse.ArgumentParser(add_help=False)
    factory.add_argument("--factory", default=None,
                         help="FAISS index factory string, e.g. 'IDMap2,Flat' or 'IVF4096,SQ8'; "
                              "default: chosen by size (exact up to 100,000 images)")

    build = commands.add_parser(
        "build", parents=[common, model, tags, factory],
        help="index a folder of images (captions from scenes.jsonl or .txt files beside them), "
             "or the demo collection with --demo")
    build.add_argument("folder", nargs="?", type=Path, metavar="DIR")
    build.add_argument("--demo", action="store_true",
                       help="render the seeded shapes-world demo collection and index it")
    build.add_argument("--n", type=positive_int, default=None,
                       help="demo collection size (default 2000)")
    build.add_argument("--seed", type=seed_value, default=None,
                       help="demo collection seed (default 0)")
    build.add_argument("--replace", action="store_true",
                       help="start the index afresh instead of adding to it")
    add_engine_options(build, "images are read and embedded")
    build.set_defaults(func=build_command)

    add = commands.add_parser("add", parents=[common, model, tags],
                              help="add image files (already indexed content is skipped)")
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--caption", default=None,
                     help="caption for every file (default: a .txt file beside each image)")
    add.set_defaults(func=add_command)

    remove = commands.add_parser("remove", parents=[common], help="remove images by id")
    remove.add_argument("ids", nargs="+", type=item_id, metavar="ID")
    remove.set_defaults(func=remove_command)

    search = commands.add_parser("search", parents=[common, model],
                                 help="the images closest to a text, an image, or both")
    search.add_argument("text", nargs="?", default=None)
    search.add_argument("--image", type=Path, default=None, metavar="PATH")
    search.add_argument("--k", type=hit_count, default=5,
                        help="number of hits (default 5, at most 1000)")
    search.add_argument("--tags", nargs="+", default=[], metavar="TAG",
                        help="only images that carry every one of these tags")
    search.add_argument("--diversity", type=unit_float, default=0.0,
                        help="0..1: trade relevance for variety among the hits (MMR)")
    search.add_argument("--text-weight", type=unit_float, default=0.5,
                        help="0..1: weight of the text against the image when both are given")
    search.add_argument("--search-params", default=None, metavar="PARAMS",
                        help="FAISS search parameters for this search, e.g. 'nprobe=64'")
    search.add_argument("--json", action="store_true", help="print the hits as a JSON list")
    search.set_defaults(func=search_command)

    stats = commands.add_parser("stats", parents=[common], help="describe the index")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.set_defaults(func=stats_command)

    rebuild = commands.add_parser(
        "rebuild", parents=[common, model, factory],
        help="rebuild the FAISS index (another type with --factory, another model with "
             "--reembed)")
    rebuild.add_argument("--search-params", default=None, metavar="PARAMS",
                         help="keep these FAISS search parameters (default: tuned for recall)")
    rebuild.add_argument("--reembed", action="store_true",
                         help="embed every image file again with --model")
    rebuild.set_defaults(func=rebuild_command)


def item_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an item id (a whole number)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not an item id (ids are 0 or more)")
    return value


def unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..1")
    return value


@contextmanager
def reported():
    """The index's own errors as the CLI's: bad input exits 2, failed work exits 1."""
    from index.errors import IndexInputError, IndexStoreError

    try:
        yield
    except IndexInputError as error:
        raise UsageError(str(error)) from None
    except IndexStoreError as error:
        raise AtelierError(str(error)) from None


def index_root(args: argparse.Namespace) -> Path:
    from agent.config import atelier_home
    from index.store import index_root as root_for

    with reported():
        return root_for(atelier_home(), args.index)


def make_embedder(args: argparse.Namespace):
    from agent.config import models_dir
    from agent.sessions.image_files import open_rgb
    from index.embedder import Embedder

    with reported():
        if args.model is None:
            if args.pretrained:
                raise UsageError("--pretrained goes with a named --model such as ViT-B-32")
            return Embedder.shipped(models_dir(), open_image=open_rgb)
        return Embedder(args.model, args.pretrained, open_image=open_rgb)


def demo_collection():
    """The shapes domain's demo collection (its module: DEMO_SIZE, DEMO_SEED, DEMO_TAG,
    write_demo_collection), found through the domain registry."""
    from agent.domains import get_domain

    make = get_domain("shapes").extras.get("demo_collection")
    if make is None:
        raise UsageError("the shapes domain brings no demo collection; index a folder instead")
    return make()


def build_command(args: argparse.Namespace) -> int:
    if args.demo == (args.folder is not None):
        raise UsageError("give either a folder of images or --demo, not "
                         + ("both" if args.demo else "neither"))
    if not args.demo and (args.n is not None or args.seed is not None):
        raise UsageError("--n and --seed choose the demo collection; use them with --demo")
    check_engine_options(args)
    root = index_root(args)
    embedder = make_embedder(args)
    from agent.config import atelier_home
    from index.collection import Collection, find_images, read_captions
    from index.metadata import normalise_tags

    demo = demo_collection() if args.demo else None
    with reported():
        collection = Collection.open(root, embedder, factory=args.factory, replace=args.replace)
        if demo is not None:
            n = args.n or demo.DEMO_SIZE
            seed = demo.DEMO_SEED if args.seed is None else args.seed
            # One folder per seed: a smaller demo is a prefix of a larger one, same bytes.
            folder = atelier_home() / "demo" / f"seed-{seed}"
            print(f"rendering {n} demo scenes into {folder}", file=sys.stderr)
            paths = demo.write_demo_collection(folder, n, seed)
            tags = [demo.DEMO_TAG, *args.tags]
        else:
            if not args.folder.is_dir():
                raise UsageError(f"{args.folder}: not a folder; give a folder of images")
            paths, folder, tags = find_images(args.folder), args.folder, args.tags
            if not paths:
                raise UsageError(f"{args.folder}: no PNG, JPEG, WebP or BMP images in it")
        captions = read_captions(folder)
        normalise_tags(tags)  # Ray starts once the input is known to be good
        with engine(args) as add:
            added = add(collection, paths, captions, tags)
        generation = collection.save()
    print(f"indexed {len(added.new_ids)} new images ({len(added.duplicate_ids)} already "
          f"there); {len(collection.store)} in {root} (generation {generation})")
    return 0


@contextmanager
def engine(args: argparse.Namespace):
    """The function that adds image files to a collection: in this process, or on Ray."""
    if args.engine == "local":
        yield lambda collection, paths, captions, tags: collection.add_files(
            paths, captions, tags=tags)
        return
    from agent.engines.ray_cluster import connected, plan_workers
    from index.ray_build import Pool, add_files

    with connected(args.address) as ray:
        def add(collection, paths, captions, tags):
            plan = plan_workers(ray, args.workers, len(paths))
            pool = Pool(plan.count, plan.cpus, plan.gpus, plan.threads)
            return add_files(ray, collection, paths, captions, pool, tags=tags)

        yield add


def add_command(args: argparse.Namespace) -> int:
    root = index_root(args)
    embedder = make_embedder(args)
    from index.collection import Collection

    with reported():
        collection = Collection.open(root, embedder)
        added = collection.add_files(args.paths, tags=args.tags, caption=args.caption)
        collection.save()  # only when something was added
    for path, item, new in zip(args.paths, added.ids, added.new):
        print(f"{item}\t{'added' if new else 'already indexed'}\t{path}")
    return 0


def remove_command(args: argparse.Namespace) -> int:
    from index.store import IndexStore

    root = index_root(args)
    with reported():
        store = IndexStore.load(root)
        store.remove(args.ids)
        store.save()
    print(f"removed {len(set(args.ids))} images; {len(store)} left in {root}")
    return 0


def search_command(args: argparse.Namespace) -> int:
    if args.text is None and args.image is None:
        raise UsageError("give a search text, --image PATH, or both")
    root = index_root(args)
    embedder = make_embedder(args)
    from index.store import IndexStore
    from retrieval.conditioning import clean_caption
    from retrieval.retriever import Retriever

    with reported():
        store = IndexStore.load(root, embedder.name, embedder.dim)
        if args.search_params is not None:
            store.set_search_params(args.search_params)
        image = embedder.open_image(args.image) if args.image is not None else None
        hits = Retriever(store, embedder).search(
            args.text, image, k=args.k, tags=args.tags, diversity=args.diversity,
            text_weight=args.text_weight)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False))
    else:
        for hit in hits:
            # Captions are other people's text: nothing in them may drive the terminal.
            print(f"{hit.id}\t{hit.score:.3f}\t{hit.path}\t{clean_caption(hit.caption)}")
    return 0


def stats_command(args: argparse.Namespace) -> int:
    from index.store import IndexStore

    root = index_root(args)
    with reported():
        stats = IndexStore.load(root).stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"index        {stats['root']} (generation {stats['generation']})")
    print(f"images       {stats['count']}")
    print(f"embedder     {stats['embedder']} ({stats['dim']}-d, cosine)")
    pinned = " (pinned)" if stats["factory_pinned"] else ""
    print(f"faiss        {stats['factory']}{pinned}  {stats['search_params'] or ''}".rstrip())
    if stats["recommended_factory"] != stats["factory"] and not stats["factory_pinned"]:
        print(f"recommended  {stats['recommended_factory']} for this size (atelier index rebuild)")
    per_vector = f" ({stats['bytes_per_vector']:.0f} per image)" if stats["count"] else ""
    print(f"on disk      {stats['bytes_on_disk']:,} bytes{per_vector}")
    tags = ", ".join(f"{t} ({n})" for t, n in stats["tags"].items()) or "none"
    print(f"tags         {tags}")
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    from index.collection import Collection
    from index.store import IndexStore

    root = index_root(args)
    with reported():
        if args.reembed:
            collection = Collection.reembed(root, make_embedder(args), factory=args.factory,
                                            search_params=args.search_params)
            store = collection.store
        else:
            if args.model or args.pretrained:
                raise UsageError("--model is used with --reembed; a plain rebuild keeps the "
                                 "index's own vectors")
            store = IndexStore.load(root)
            store.rebuild(factory=args.factory, search_params=args.search_params)
        generation = store.save(fit=False)
    print(f"rebuilt {root} as {store.factory} {store.search_params}".rstrip()
          + f" with {len(store)} images (generation {generation})")
    return 0
