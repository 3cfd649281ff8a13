"""Training pieces: the dataset and the LightningModule (the train stage is [`facedet.pipeline.train`][])."""
