"""snn2hw_emulator: a bit-accurate cycle emulator for the Loihi arithmetic family.

Installed as ``snn2hw_emulator`` (source directory ``emulator/``). It reads a
program image and knows nothing of the compiler: it imports nothing from
``snn2hw``. The program image is the contract, like a binary for a chip.
"""
