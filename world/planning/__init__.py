"""The shapes domain's planning: its rule grammar (requests in the world's words read into
plans), box geometry, the `edit_objects` planner operation, and the planner benchmark's exact
simulator. The core planners (planners/) know none of it; world/domain.py hands it to them."""
