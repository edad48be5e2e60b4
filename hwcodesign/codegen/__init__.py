"""Code generation: the Vitis HLS / Vivado / PYNQ project of a mapped graph (project.py), its C
simulation (csim.py) and its packaging for the board (package.py).

A regular package (this file) rather than a namespace folder, so that `find:` in setup.cfg finds it
and a wheel carries it.
"""
