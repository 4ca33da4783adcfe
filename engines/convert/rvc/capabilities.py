"""What the RVC stage declares: devices, precisions and knobs (the dashboard and CLI build controls from it)."""

from __future__ import annotations

from engines.base import Capabilities, KnobKind, KnobPhase, KnobSpec, Refusal

RANDOM_FULL = "random-full"
RANDOM_TINY = "random-tiny"
RANDOM = "random"

#: Pitch estimators: the cheap ones (pm, harvest) and the accurate ones (rmvpe, crepe).
F0_METHODS: tuple[str, ...] = ("pm", "harvest", "rmvpe", "crepe")
MODEL_SAMPLE_RATES: tuple[str, ...] = ("40000", "48000")

RVC_CAPABILITIES = Capabilities(
    devices=("cpu", "cuda"),
    precisions=("fp32", "fp16"),
    streaming=True,  # converts chunk by chunk in the streaming lab
    voice_cloning=False,
    precision_note="RVC runs fp32 or fp16 (rvc-next's is_half); bf16 and int8 are not implemented there",
    refusals=(
        Refusal("fp16 on the CPU: rvc-next runs RVC in fp32 there (half precision only on a GPU)",
                precision="fp16", device="cpu"),
    ),
    framework="torch",
    knobs=(
        KnobSpec("weights", KnobKind.TEXT, RANDOM_FULL,
                 "random-full (offline random weights, the real v2 compute profile; audio is noise), "
                 "random-tiny (tests), or a local RVC v2 model file (.pth)", phase=KnobPhase.LOAD),
        KnobSpec("model_sample_rate", KnobKind.CHOICE, "40000",
                 "v2 synthesizer rate: built at this rate with random weights; a model file must have it",
                 phase=KnobPhase.LOAD, choices=MODEL_SAMPLE_RATES),
        KnobSpec("hubert", KnobKind.TEXT, RANDOM,
                 "content features: random (HuBERT base built offline from its config; tiny with random-tiny) "
                 "or a local HuBERT/ContentVec directory (config.json + weights)", phase=KnobPhase.LOAD),
        KnobSpec("f0_method", KnobKind.CHOICE, "rmvpe",
                 "pitch estimator: pm/harvest (cheap), rmvpe/crepe (accurate); each only where its package is "
                 "installed", phase=KnobPhase.LOAD, choices=F0_METHODS),
        KnobSpec("rmvpe_weights", KnobKind.TEXT, RANDOM,
                 "f0_method=rmvpe: random (offline, real size) or a local rmvpe.pt", phase=KnobPhase.LOAD),
        KnobSpec("index", KnobKind.TEXT, "",
                 "feature retrieval: empty (off), random (a faiss IVF index of random vectors at a trained "
                 "voice's size) or a local .index file", phase=KnobPhase.LOAD),
        KnobSpec("pitch", KnobKind.INT, 0, "pitch shift in semitones", minimum=-24, maximum=24, step=1),
        KnobSpec("index_rate", KnobKind.FLOAT, 0.75, "share of the retrieved features (needs an index)",
                 minimum=0.0, maximum=1.0, step=0.05),
        KnobSpec("protect", KnobKind.FLOAT, 0.33,
                 "keep unvoiced consonants from the source features (0.5 = off)", minimum=0.0, maximum=0.5,
                 step=0.01),
        KnobSpec("filter_radius", KnobKind.INT, 3, "harvest: median filter on the pitch when 3 or more",
                 minimum=0, maximum=7, step=1),
        KnobSpec("resample_rate", KnobKind.INT, 0,
                 "output rate: 0 = the model's rate, else 16000 to 48000 Hz", minimum=0, maximum=48000, step=1),
        KnobSpec("rms_mix_rate", KnobKind.FLOAT, 0.25,
                 "loudness envelope: 0 = the source's, 1 = the converted audio's", minimum=0.0, maximum=1.0,
                 step=0.05),
    ),
)
