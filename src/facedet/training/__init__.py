"""Training pieces: the dataset and the LightningModule (the train stage is :mod:`facedet.pipeline.train`)."""
