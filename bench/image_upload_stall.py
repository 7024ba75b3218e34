"""How long preparing uploaded images pauses the gevent event loop (every open stream).

Prepares four 12-megapixel JPEGs directly and through images.ImagePreparer while a
greenlet ticks every 10 ms, and prints the total time and the longest pause between ticks.

    .venv/bin/python bench/image_upload_stall.py
"""

from gevent import monkey

monkey.patch_all()

import io  # noqa: E402
import sys  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _ticker import loop_pause  # noqa: E402

from webapp.conversations import images  # noqa: E402

IMAGES = 4


def photo() -> bytes:
    """A 4000x3000 JPEG of noise (the hardest case for the encoder)."""
    out = io.BytesIO()
    Image.effect_noise((4000, 3000), 40).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()



def main() -> None:
    raw = photo()
    print(f"{IMAGES} JPEGs of {len(raw) / 1e6:.1f} MB, 4000x3000, scaled to 2048 px")
    limits = {"max_pixels": 24_000_000, "max_stored_bytes": 1024 * 1024}
    for name, prepare in (("in the event loop", partial(images.prepare, **limits)),
                          ("in the thread pool", images.ImagePreparer(**limits, at_once=1).prepare)):
        took, pause = loop_pause(lambda: [prepare(raw) for _ in range(IMAGES)])
        print(f"{name:>20}: {took:.2f} s in all, longest pause of the loop {pause * 1000:.0f} ms")


if __name__ == "__main__":
    main()
