"""The shard step (``preprocess``): the MMIDIDX format (``indexed``: header, reader, builder, names), the
encoders (``encoder``), the per-split writer (``writer``) and the stage that binarizes a corpus
(``binarize``)."""
