"""A deterministic, embedded sample dataset built from real pictures shipped inside installed packages.

No network: faces come from ``skimage.data.astronaut()`` (Eileen Collins), ``skimage.data.camera()``
(the cameraman, grayscale, three-quarter profile), matplotlib's ``grace_hopper.jpg`` and the first
100 face crops of ``skimage.data.lfw_subset()`` (25x25 grayscale, upscaled: small, blurry faces).
Backgrounds are face-free pictures from scikit-learn and scikit-image.

Scenes hold 0 to ``max_faces`` faces: ``negative_fraction`` of the images have none, the others draw
their face count uniformly from 1..max_faces. Face sizes (the longer side of the face box) are
log-uniform from 12 px up to 85 % of the shorter image side divided by sqrt(face count), so scenes
with several faces hold smaller ones. Each face is cut as a head patch (the face box plus a margin),
rescaled, flipped, tinted, lit from one side, sometimes blurred, rotated in-plane by up to
``max_rotation`` degrees and pasted with a feathered alpha mask onto a random crop of a background.
Its label is the hand-drawn face box carried through the exact same geometry: the box's centre
follows the rotation, and the label is the axis-aligned box of the rotated ellipse inscribed in the
face box (see `inscribed_ellipse_box`; the box of the rotated corners would be too loose on a face).
About ``cut_fraction`` of the faces are placed partly outside the image; their label is the visible
part (the box clipped to the image), and a face with less than 45 % of its box visible is never
placed. Face boxes of one image barely overlap (each covers at most 10 % of the other's area).

The output is what a person has after labelling in labelme 5.4.1 with ``--nodata``:
``images/sample_NNNN.jpg`` and, for images with faces only, ``labels/sample_NNNN.json``.
Same settings -> byte-identical files.
"""

from facedet.apps.sample.compose import Face, inscribed_ellipse_box
from facedet.apps.sample.generate import SampleSettings, generate, generate_faces
from facedet.apps.sample.pictures import ASTRONAUT_FACE, CAMERA_FACE, HOPPER_FACE

__all__ = [
    "ASTRONAUT_FACE",
    "CAMERA_FACE",
    "HOPPER_FACE",
    "Face",
    "SampleSettings",
    "generate",
    "generate_faces",
    "inscribed_ellipse_box",
]
