"""Label importers: annotation tools' files -> facedet.coco.Image lists."""
