"""musicldm_core: the engine that turns a prompt into an exact-length, loop-ready clip.

Model loading, the sampling loop, beat math, post-processing and WAV writing. It never imports
``daemon``. Importing this package is cheap: torch and diffusers load only with :mod:`.engine`,
:mod:`.loading` and :mod:`.testmodels`.
"""

__version__ = "0.1.0"
