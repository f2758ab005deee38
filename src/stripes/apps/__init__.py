"""Applications built on the library and the experiments: the demo (``stripes demo``) and the harmonizer
for a musician's own melody (``stripes harmonize``)."""
