"""Names the Modal tests and their fixtures share (a module of its own: test files importing
``conftest`` by name would get another folder's conftest when pytest runs several folders)."""

BUCKET = "vidluxe-gpu-test"
SOURCE_KEY = "uploads/t1/clip.mp4"
FPS = 8
