"""Cut an image into tiles (UPYUN's asynchronous ``x-gmkerl-split``): row by row, left to right;
the last column and row are narrower where the image does not divide evenly. The first frame of
an animation is cut."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediagate.core.errors import BadRequest
from mediagate.media._vips import release_memory, vips

MAX_TILES = 1000


@dataclass(frozen=True)
class Tile:
    row: int
    column: int
    path: Path
    width: int
    height: int


def split_image(src: Path, tile_width: int, tile_height: int, out_dir: Path, ext: str) -> list[Tile]:
    """Tiles of at most ``tile_width`` x ``tile_height`` of ``src``, saved as ``<out_dir>/<n>.<ext>``.
    BadRequest for a tile size of 0 or one that would cut more than ``MAX_TILES`` tiles."""
    if tile_width <= 0 or tile_height <= 0:
        raise BadRequest("the tile size must be at least 1x1", code="bad_split")
    image = vips().Image.new_from_file(str(src))
    columns = -(-image.width // tile_width)
    rows = -(-image.height // tile_height)
    if rows * columns > MAX_TILES:
        raise BadRequest(
            f"{tile_width}x{tile_height} tiles would cut {rows * columns} pieces; at most {MAX_TILES}",
            code="bad_split",
        )
    tiles: list[Tile] = []
    try:
        for row in range(rows):
            for column in range(columns):
                x, y = column * tile_width, row * tile_height
                w, h = min(tile_width, image.width - x), min(tile_height, image.height - y)
                path = out_dir / f"tile-{len(tiles)}.{ext}"
                image.crop(x, y, w, h).write_to_file(str(path))
                tiles.append(Tile(row, column, path, w, h))
    finally:
        release_memory()
    return tiles
