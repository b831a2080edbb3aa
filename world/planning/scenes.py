"""The world's scenes as the core planners see them, and back.

The core's `SceneReading` names each object in words with its box; the shapes world keeps
shape, colour and size as attributes beside the words, so its grammar can rebuild the exact
`Scene` the detector read."""
from __future__ import annotations

from planners.context import ImageInfo, PlanningContext, SceneObject, SceneReading

from ..captions import caption
from ..scene import Obj, Scene


def reading_from_scene(scene: Scene) -> SceneReading:
    """Ids obj_1, obj_2 ... in the order the scene lists its objects (the detector lists them
    in reading order, so ids are stable for the same image)."""
    return SceneReading(background=scene.background, objects=[
        SceneObject(id=f"obj_{i}", name=f"{o.size} {o.color} {o.shape}",
                    box=[round(v, 4) for v in o.box],
                    attributes={"shape": o.shape, "color": o.color, "size": o.size})
        for i, o in enumerate(scene.objects, 1)])


def obj_from(item: SceneObject) -> Obj:
    """The world object a reading's object stands for; ValueError if it is not one."""
    try:
        shape, color, size = (item.attributes[k] for k in ("shape", "color", "size"))
    except KeyError as missing:
        raise ValueError(f"{item.id} has no {missing.args[0]}: not a shapes-world object") from None
    x, y = item.centre
    # A triangle's box is shorter than its side; its centre is still the box centre.
    return Obj(shape, color, size, round(x, 4), round(y, 4))


def scene_from_reading(reading: SceneReading) -> Scene:
    return Scene(tuple(obj_from(o) for o in reading.objects), reading.background or "white")


def scene_of(context: PlanningContext) -> Scene | None:
    """The scene of the context's current image, where one was read."""
    return scene_from_reading(context.scene) if context.scene is not None else None


def reading_from_json(data: dict) -> SceneReading:
    """A scene as the world's checker stores it (Scene.to_dict) -> the planners' reading."""
    return reading_from_scene(Scene.from_dict(data))


def context_for_scene(scene: Scene, request: str = "", image_id: str = "img_1",
                      **fields) -> PlanningContext:
    """A context whose current image shows `scene` (one image, no history)."""
    return PlanningContext(request=request, images=[ImageInfo(id=image_id, caption=caption(scene))],
                           current_image=image_id, scene=reading_from_scene(scene), **fields)


def context_to_json(context: PlanningContext) -> dict:
    """A context as the planner cases store it: scene objects by shape, colour and size, the
    background left out when it is the world's default (the cases file keeps its bytes)."""
    data = context.model_dump(mode="json", exclude_defaults=True)
    scene = data.get("scene")
    if scene is not None:
        if scene.get("background") == "white":
            del scene["background"]
        scene["objects"] = [{"id": o["id"], **o.get("attributes", {}), "box": o["box"]}
                            for o in scene.get("objects", [])]
    return data


def context_from_json(data: dict) -> PlanningContext:
    """`context_to_json`'s inverse."""
    data = dict(data)
    scene = data.get("scene")
    if scene is not None:
        objects = [SceneObject(id=o["id"], name=f"{o['size']} {o['color']} {o['shape']}",
                               box=o["box"],
                               attributes={k: o[k] for k in ("shape", "color", "size")})
                   for o in scene.get("objects", [])]
        for item in objects:
            obj_from(item)  # the world's own check of each shape, colour and size
        data["scene"] = SceneReading(background=scene.get("background", "white"),
                                     objects=objects)
    return PlanningContext.model_validate(data)
