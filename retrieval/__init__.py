"""Retrieval: exemplar search over an index, and the conditioning built from its hits.

- `retriever.Retriever` / `retriever.Hit`: text, image or combined queries, tag filters, MMR.
- `conditioning.Exemplars`: hits as ref_N reference images, and their captions quoted for a
  planner.
"""
