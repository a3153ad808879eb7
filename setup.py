"""Ship the repository's templates/, runtime_c/ and examples/ data inside the wheel.

They live at the repository root (where C developers expect them); build_py copies them to
tinycc/data/ in the build tree so that a plain `pip install .` carries them.
An editable install finds them at the repository root instead (see tinycc/resources.py).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
SHIPPED = {"templates": "**/*", "runtime_c": "*", "examples": "*.onnx"}  # templates/arm/ too


class BuildWithData(build_py):
    def run(self):
        super().run()
        for folder, pattern in SHIPPED.items():
            dst = Path(self.build_lib) / "tinycc" / "data" / folder
            dst.mkdir(parents=True, exist_ok=True)
            for f in sorted((ROOT / folder).glob(pattern)):
                if f.is_file():
                    target = dst / f.relative_to(ROOT / folder)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)


setup(cmdclass={"build_py": BuildWithData})
