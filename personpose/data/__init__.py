"""Data layer: keypoints and PATN-format files, pose maps and part masks, data sets."""
