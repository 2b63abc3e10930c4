"""Global Accelerator emulation (moto has none): state in ``models``, JSON 1.1 transport in ``responses``."""
