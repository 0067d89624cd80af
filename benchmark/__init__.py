"""srbench: quality and stability (G-STD, L-STD) of image super-resolution methods.

The protocol follows the CCSR paper (Sun et al.): every stochastic method runs N times per
image with seeds ``seed + r``; per-image metrics get a G-STD (mean over images of the
population std over runs) and the stored images an L-STD (mean per-pixel std over runs).
"""

__version__ = "0.1.0"
