"""Operation name -> adapter class: the operations `pipelines` can run, listed by hand."""
from __future__ import annotations

from pipelines.base import Adapter
from pipelines.compose import Compose
from pipelines.edit import Edit
from pipelines.generate import Generate
from pipelines.inpaint import Inpaint
from pipelines.invert_edit import InvertEdit
from pipelines.layout import Layout
from pipelines.models import ModelSet
from pipelines.reference import Reference
from pipelines.restore import Restore

ADAPTERS: dict[str, type[Adapter]] = {
    "generate": Generate,
    "edit": Edit,
    "inpaint": Inpaint,
    "layout": Layout,
    "reference": Reference,
    "compose": Compose,
    "restore": Restore,
    "invert_edit": InvertEdit,
}


def build_adapter(name: str, models: ModelSet) -> Adapter:
    try:
        adapter_class = ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(ADAPTERS)}") from None
    return adapter_class(models)
