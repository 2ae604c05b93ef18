"""Convert's settings as a user gives them, and the one place they become library objects:
a Translator (:class:`ModelSpec`) and ConvertOptions (:class:`PipelineSpec`). The command line
parses its options into these (cli/options.py); the Python API builds them from keywords."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..choices import (
    Backend,
    BarsMode,
    Domain,
    Exposure,
    HwAccel,
    OfficialDomain,
    Precision,
    Quality,
    Smoothing,
    Upsampler,
    require,
    require_device_name,
    require_flag,
    require_number,
)

if TYPE_CHECKING:
    from ..pipeline import ConvertOptions, WorkingSize
    from ..translator import Translator
    from ..video.codecs import EncodeSettings


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run, where and how."""

    path: Path | None = None  # None: the bundled default
    official_day: OfficialDomain = "a"  # for an official UNIT gen_*.pt: its day half
    device: str = "auto"
    precision: Precision = "auto"
    compile: bool = False
    backend: Backend = "auto"

    def __post_init__(self) -> None:
        require(OfficialDomain, self.official_day, "official_day")
        require(Precision, self.precision, "precision")
        require(Backend, self.backend, "backend")
        require_flag(self.compile, "compile")
        require_device_name(self.device)  # the name itself is checked where the model loads

    def load(self) -> Translator:
        """The translator, with the process-wide torch settings a command wants."""
        from ..model.runtime import set_fast_flags
        from ..registry import load_translator

        backend = "torch" if self.compile and self.backend == "auto" else self.backend
        translator = load_translator(
            self.path, self.official_day, self.device, self.precision, backend
        )
        set_fast_flags(translator.device)
        return translator.compile() if self.compile else translator


@dataclass(frozen=True)
class SizeSpec:
    """The network's working size as the user asked for it."""

    quality: Quality = "auto"
    work_size: int | None = None
    max_size: int | None = None
    upsample: Upsampler = "guided"

    def __post_init__(self) -> None:
        require(Quality, self.quality, "quality")
        require(Upsampler, self.upsample, "upsample")
        for name, value in (("work_size", self.work_size), ("max_size", self.max_size)):
            if value is not None:
                require_number(value, name, lambda v: v >= 16, "an integer >= 16", True)

    def resolve(self, model_meta: dict[str, object]) -> WorkingSize:
        from ..pipeline import working_size

        return working_size(self.quality, self.work_size, self.max_size, self.upsample, model_meta)


@dataclass(frozen=True)
class PipelineSpec:
    """How frames flow: batching, decoding, the segment and temporal smoothing."""

    size: SizeSpec
    batch_size: int = 0
    hwaccel: HwAccel = "auto"
    start: float = 0.0
    duration: float | None = None
    smooth: Smoothing = "none"
    smooth_strength: float = 0.6
    exposure: Exposure = "steady"
    salvage: bool = False
    bars: BarsMode = "keep"

    def __post_init__(self) -> None:
        """The command line's ranges, for the Python API's keywords: refused before a model
        loads or a frame decodes."""
        require_number(
            self.batch_size, "batch_size", lambda v: 0 <= v <= 256, "0 (auto) to 256", True
        )
        require(HwAccel, self.hwaccel, "hwaccel")
        require_number(self.start, "start", lambda v: v >= 0, "a number of seconds >= 0")
        if self.duration is not None:
            require_number(self.duration, "duration", lambda v: v > 0, "a number of seconds > 0")
        require(Smoothing, self.smooth, "smooth")
        require_number(self.smooth_strength, "smooth_strength", lambda v: 0 <= v < 1, "in [0, 1)")
        require(Exposure, self.exposure, "exposure")
        require(BarsMode, self.bars, "bars")
        require_flag(self.salvage, "salvage")

    def options(
        self, translator: Translator, to: Domain, encode: EncodeSettings | None = None
    ) -> ConvertOptions:
        """The library's ConvertOptions for this translator and target domain."""
        from ..pipeline import ConvertOptions
        from ..video.codecs import EncodeSettings

        hwaccel = self.hwaccel
        if hwaccel == "auto":  # NVDEC when the network runs on CUDA
            hwaccel = "cuda" if translator.device.type == "cuda" else "none"
        return ConvertOptions(
            to=to,
            batch_size=self.batch_size,
            resolution=self.size.resolve(translator.meta),
            start=self.start,
            duration=self.duration,
            smooth=self.smooth,
            smooth_strength=self.smooth_strength,
            exposure=self.exposure,
            salvage=self.salvage,
            bars=self.bars,
            hwaccel=None if hwaccel == "none" else hwaccel,
            encode=encode or EncodeSettings(),
        )
