"""Tell what kind of file the user handed us, by content rather than extension."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from snn2hw_emulator.program import FORMAT_NAME as PROGRAM_FORMAT

from snn2hw.errors import ModelFileError
from snn2hw.paths import output_file

FileKind = Literal["nir", "program", "onnx", "netx", "pt2"]



def sniff(path: str | Path) -> FileKind:
    """Return "nir" for a NIR graph file, "program" for a program image, "netx" for a lava-dl
    network, "pt2" for a torch.export archive and "onnx" for an ``.onnx`` file (ONNX has no
    magic number; its content is checked when it is parsed). Pickled PyTorch files are
    refused: reading them would run arbitrary code."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"file '{path}' does not exist",
                             hint="Check the path; snn2hw reads .nir files, .onnx files and "
                                  "program images.")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    torch_kind = _torch_zip(path)
    if torch_kind == "pt2":
        return "pt2"
    if torch_kind == "pickle":
        from snn2hw.importers.pt2_archive import EXPORT_HINT

        raise ModelFileError(f"file '{path}' is a pickled PyTorch file; snn2hw does not unpickle "
                             "model files (that runs arbitrary code)", hint=EXPORT_HINT)
    if not h5py.is_hdf5(path):
        raise ModelFileError(f"file '{path}' is not an HDF5 file (neither a .nir model nor a "
                             "program image)",
                             hint="Export the model with nir.write or `snn2hw compile`.")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") in (PROGRAM_FORMAT, PROGRAM_FORMAT.encode()):
                return "program"
            if "node" in f:
                return "nir"
            if "layer" in f:
                return "netx"
    except (OSError, KeyError, ValueError, RuntimeError) as exc:   # h5py on corrupt headers
        raise ModelFileError(f"file '{path}' could not be read as HDF5 ({exc})",
                             hint="The file may be truncated; write it again.") from None
    raise ModelFileError(f"file '{path}' is HDF5 but neither a NIR graph (no 'node' group) nor "
                         "an snn2hw program image (no 'format' attribute)",
                         hint="Pass a .nir model or a program image written by snn2hw.")


def _torch_zip(path: Path) -> str | None:
    """'pt2' for a torch.export archive, 'pickle' for torch.save/torch.jit files, else None."""
    import zipfile

    from snn2hw.importers.pt2_archive import BROKEN, broken

    zip_header = False
    try:
        with path.open("rb") as f:
            zip_header = f.read(4) == b"PK\x03\x04"
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except BROKEN as exc:     # a damaged zip raises BadZipFile, UnicodeDecodeError, ...
        if zip_header:          # (other files may end in bytes that look like a zip's end)
            raise broken(str(path), exc) from None
        return None
    if any(n.endswith("/archive_format") for n in names):
        return "pt2"
    return "pickle" if any(n.endswith("data.pkl") for n in names) else None


def usual_mode(directory: bool = False) -> int:
    """The mode open()/mkdir() would give a new file or folder under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write(path: str | Path, write: Callable[[str], None], *, what: str = "output") -> None:
    """Call ``write(tmp_path)`` on a temporary file in the target folder, then rename it
    over ``path``: a failure leaves no half-written file behind."""
    path = output_file(path, what)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, usual_mode())            # mkstemp's 0600 would stay on the result
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
