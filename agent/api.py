"""The Python API.

    from agent.api import Atelier

    atelier = Atelier()                               # ATELIER_HOME, shipped models, rule planner
    session = atelier.session("poster")
    result = session.ask("a red circle left of a blue square")
    result.image.path, result.plan.rationale, result.checks
    session.ask("make the circle green"); session.undo(); session.history()

`Atelier(home, llm, models)`:
- `home`: the store folder (default: ATELIER_HOME, else ~/.atelier).
- `llm`: None for the offline rule planner; "openai:MODEL", "ollama:MODEL", "hf:ID_OR_PATH";
  or any LangChain chat model.
- `models`: None for the shipped shapes-world models (ATELIER_MODELS, else models/); a folder
  holding shapes-sd / shapes-ip2p / shapes-clip; a `pipelines.models.ModelConfig` for hub or
  local models; or any step runner (an object with `run` and `model_ids`, see agent/turn/runner.py).

Nothing loads until the first turn runs: opening sessions, reading history, undo and redo
need neither torch nor weights.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from agent.config import atelier_home, is_model_file, models_dir, models_file
from agent.errors import UsageError
from agent.sessions.session import Session
from agent.sessions.store import Store
from pipelines.once import Once, OnceMap

SHIPPED_DOMAIN = "shapes"  # what the models Atelier ships draw


class Atelier:
    def __init__(self, home: str | Path | None = None, llm: Any = None, models: Any = None, *,
                 planner: Any = None, checker: Any = "auto", retriever: Any = "auto",
                 limits: Any = None, domain: str | None = None,
                 llm_images: bool | str | None = None):
        self.home = Path(home).expanduser() if home is not None else atelier_home()
        self.store = Store(self.home)
        self._llm = llm
        self._models = models
        self._domain = domain
        self._llm_images = attach_image(llm_images)
        self._given = {"planner": planner, "checker": checker, "retriever": retriever}
        self._limits = limits
        # Each part is built once, by whichever thread asks first (pipelines/once.py): a
        # script's workers and a page's first requests all ask at the same moment.
        self._parts = OnceMap()

    def __repr__(self) -> str:
        return f"Atelier(home={str(self.home)!r})"

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Atelier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- sessions -----------------------------------------------------------------------

    def session(self, name: str = "default", *, create: bool = True) -> Session:
        """The session called `name`, started if it is new (unless `create` is False)."""
        return Session(self, name, self.store.session_id(name, create=create))

    def sessions(self) -> list[str]:
        return self.store.session_names()

    # --- parts, built on first use ------------------------------------------------------

    def orchestrator(self):
        def make():
            from agent.turn.orchestrator import Orchestrator

            from agent.turn.orchestrator import Corrector

            domain = self.domain()
            corrections = domain.corrections() if domain.corrections is not None else None
            notice = domain.checks_notice if self._given["checker"] == "auto" else ""
            return Orchestrator(self.planner(), self.runner(), self.checker(),
                                self.retriever(), self._limits,
                                Corrector(corrections=corrections), notice)

        return self._parts.get("orchestrator", make)

    def warm_up(self) -> None:
        """Build every part and load the models a first turn needs, so that turn need not wait
        for them (`atelier web` does this as it starts). Safe beside turns that start at the
        same time: each part is still built once."""
        runner = self.orchestrator().runner
        if callable(getattr(runner, "warm_up", None)):
            runner.warm_up()

    def domain(self):
        """The domain this Atelier plans and checks in (agent/domains): the one asked for,
        else ATELIER_DOMAIN, else the model set's declared domain, else general."""
        from agent.domains import choose, get_domain

        return self._parts.get("domain", lambda: get_domain(
            choose(self._domain, declared_domain(self._models))))

    def planner(self):
        given = self._given["planner"]
        return self._parts.get("planner", lambda: given if given is not None else make_planner(
            self._llm, self.domain(), self._llm_images))

    def offered_operations(self) -> list[str] | None:
        """The operations the model set offers, where it does not offer every registered one
        (None: all, or a runner that does not say)."""
        from pipelines.errors import ModelUnavailable
        from pipelines.spec import OPERATIONS

        offered = getattr(self.runner(), "operations", None)
        if not callable(offered):
            return None
        try:
            names = list(offered())
        except ModelUnavailable:
            return None   # a missing model is reported by the step that needs it
        return None if set(names) >= set(OPERATIONS) else names

    def runner(self):
        def make():
            config = model_config(self._models)
            return make_runner(self._models, self.domain().make_grounder(config))

        return self._parts.get("runner", make)

    def model_ids(self) -> dict[str, str]:
        return dict(self.runner().model_ids())

    def checker(self):
        given = self._given["checker"]
        return self._parts.get("checker", lambda: make_checker(given, self.domain(), self.runner)
                               if isinstance(given, str) else given)

    def retriever(self):
        given = self._given["retriever"]
        return self._parts.get("retriever", lambda: default_retriever(self.home)
                               if isinstance(given, str) and given == "auto" else given)


def attach_image(choice: bool | str | None) -> bool | None:
    """Whether an LLM planner sends the current image, from `--llm-images` (auto, on, off) or a
    bool; None asks the model's profile."""
    return {"auto": None, "on": True, "off": False}.get(choice, choice)


def make_planner(llm: Any, domain, attach_image: bool | None = None):
    """The domain's offline planner for None; an LLMPlanner told what the domain knows for a
    provider spec or a chat model."""
    if llm is None:
        return domain.rule_planner()
    from agent.config import llm_call_timeout
    from planners.llm import LLMPlanner

    if isinstance(llm, str):
        from planners.providers import ProviderError, chat_model

        try:
            model = chat_model(llm)
        except ProviderError as error:
            raise UsageError(str(error)) from None
        return LLMPlanner(model, timeout=llm_call_timeout(), attach_image=attach_image,
                          **domain.llm_options())
    from langchain_core.language_models import BaseChatModel

    if isinstance(llm, BaseChatModel):
        return LLMPlanner(llm, timeout=llm_call_timeout(), attach_image=attach_image,
                          **domain.llm_options())
    if callable(getattr(llm, "plan", None)):
        return llm  # a planner already
    raise UsageError(f"llm must be None, a PROVIDER:MODEL string or a LangChain chat model, "
                     f"got {type(llm).__name__}")


def declared_domain(models: Any) -> str | None:
    """The domain a model set says it is for: the shipped models' (None, or a folder holding
    them) is shapes; a ModelConfig or a runner says it in its `domain`."""
    if (models is None and models_file() is not None) or (
            isinstance(models, (str, Path)) and is_model_file(models)):
        return model_config(models).domain
    if models is None or isinstance(models, (str, Path)):
        return SHIPPED_DOMAIN
    return getattr(getattr(models, "config", models), "domain", None) or getattr(
        models, "domain", None)


def model_config(models: Any):
    """The ModelConfig `models` stands for, or None for a runner of its own."""
    from pipelines.models import ModelConfig

    if models is None and models_file() is not None:
        models = models_file()
    if models is None:
        return ModelConfig.shipped(models_dir())
    if isinstance(models, (str, Path)) and is_model_file(models):
        return model_set_file(models)
    if isinstance(models, (str, Path)):
        folder = Path(models).expanduser()
        if not folder.is_dir():
            raise UsageError(f"models folder {folder} does not exist; give the folder that holds "
                             "shapes-sd, shapes-ip2p and shapes-clip")
        return ModelConfig.shipped(folder)
    return models if isinstance(models, ModelConfig) else None


def model_set_file(path: str | Path):
    """The ModelConfig a model file (TOML) writes; what is wrong with it is a usage error."""
    from pipelines.model_file import ModelFileError, read_model_file

    try:
        return read_model_file(path)
    except ModelFileError as error:
        raise UsageError(str(error)) from None


def make_runner(models: Any, grounder: Any = None):
    from pipelines.models import ModelSet

    from agent.turn.runner import PipelineRunner

    config = model_config(models)
    if config is not None:
        return PipelineRunner(ModelSet(config, grounder))
    if callable(getattr(models, "run", None)) and callable(getattr(models, "model_ids", None)):
        return models
    raise UsageError(f"models must be None, a models folder, a ModelConfig or a step runner, got "
                     f"{type(models).__name__}")


def make_checker(kind: str, domain, runner):
    """"auto": the domain's checker; "clip", "none"; or another domain's name, whose checker
    judges these images (e.g. "shapes" for images of the shapes world made elsewhere)."""
    from agent.turn.checks import ClipChecker, NoChecker

    if kind == "auto":
        return domain.make_checker(runner)
    if kind == "clip":
        return ClipChecker(lambda: runner().models.clip())
    if kind == "none":
        return NoChecker()
    from agent.domains import available, get_domain

    if kind in available():
        return get_domain(kind).make_checker(runner)
    raise UsageError(f"checker {kind!r} is not one of auto, clip, none or a domain "
                     f"({', '.join(sorted(available()))})")


def default_retriever(home: Path):
    """The retriever over ATELIER_HOME's default index, or None when there is no index (a
    step that asks for exemplars then tells its planner so)."""
    from index.store import IndexStore, index_root

    root = index_root(home)
    if not IndexStore.exists(root):
        return None
    return _LazyRetriever(root)


class _LazyRetriever:
    """Loads the index and its embedder on the first search, not when a session opens."""

    def __init__(self, root: Path):
        self.root = root
        self._retriever = Once()
        self._lock = threading.Lock()  # sessions of a script may search side by side

    def search(self, text: str, *, k: int):
        retriever = self._retriever.get(self._load)
        with self._lock:
            return retriever.search(text, k=k)

    def _load(self):
        from index.embedder import Embedder
        from index.store import IndexStore
        from retrieval.retriever import Retriever

        from agent.sessions.image_files import open_rgb

        embedder = Embedder.shipped(models_dir(), open_image=open_rgb)
        return Retriever(IndexStore.load(self.root, embedder.name, embedder.dim), embedder)
