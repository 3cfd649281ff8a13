"""Progress without a terminal (DVC's output, CI, nohup): a plain line every so often."""

import pytorch_lightning as pl
import torch

from facedet.progress import line, track
from facedet.training.module import EpochLines


def test_line_says_how_far_how_fast_and_how_long_is_left():
    assert line("evaluate", 120, 4000, 60.0) == "evaluate: 120/4000 pictures, 2.0 pictures/s, 32 min left"
    assert line("detect clip.mp4", 10, None, 5.0, "frames") == "detect clip.mp4: 10 frames, 2.0 frames/s"


def test_track_prints_lines_on_stderr_when_there_is_no_terminal(capsys):
    assert list(track(range(3), "evaluate", every=0)) == [0, 1, 2]  # pytest's stderr is no terminal
    lines = capsys.readouterr().err.splitlines()
    assert [text.split(",")[0] for text in lines] == [
        "evaluate: 1/3 pictures",
        "evaluate: 2/3 pictures",
        "evaluate: 3/3 pictures",
    ]


def test_a_training_epoch_says_how_far_it_is(tmp_path, capsys):
    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(8, 2)), batch_size=2)
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[EpochLines(every=0)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Tiny(), data)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch 1/2: 2/8 pictures, ") and "pictures/s" in out[0] and "left" in out[0]
    assert "epoch 2/2: 8/8 pictures, " in "\n".join(out)
