"""``transformer-task``: train any HF language model described by a model-config YAML.

Written in the shape of the custom-task example users copy from the docs (seed-train.rst), so it
doubles as the reference implementation of a task: pick params out of the parsed tuple, build tokenizer and model, wrap them in
``TransformerModule`` / ``TransformerDataModule``.
"""

from __future__ import annotations

import logging
from argparse import Namespace

from gitnetic.common.dataclass_argparse import DataclassArgumentParser, DataclassBase, get_params_item
from gitnetic.common.errors import TaskError
from gitnetic.models.build import build_model_and_tokenizer, load_pretrained_model_and_tokenizer
from gitnetic.models.lora import apply_lora
from gitnetic.models.memory import weights_dtype
from gitnetic.models.params import LoraParams
from gitnetic.modules.params import DataModuleParams, ModuleParams
from gitnetic.modules.transformer_datamodule import TransformerDataModule
from gitnetic.modules.transformer_module import TransformerModule
from gitnetic.tasks.params import TransformerTaskParams
from gitnetic.tasks.task_module import TaskModule

__all__ = ["TransformerTask"]

logger = logging.getLogger(__name__)

ParamType = DataclassBase | Namespace


@TaskModule.register("transformer-task")
class TransformerTask(TaskModule[TransformerModule, TransformerDataModule]):
    """Train a transformer LM (masked or causal) from a model-config YAML and a trained tokenizer."""

    Params = TransformerTaskParams
    params: Params
    params_type: type[Params] = Params

    ComponentParams = tuple[
        Params, TransformerModule.params_type, TransformerDataModule.params_type, LoraParams
    ]

    @classmethod
    def get_params(cls, params: tuple[ParamType, ...]) -> ComponentParams:
        task_params = get_params_item(params=params, params_type=cls.params_type)
        module_params = get_params_item(params=params, params_type=TransformerModule.params_type)
        datamodule_params = get_params_item(params=params, params_type=TransformerDataModule.params_type)
        for value, owner in (
            (task_params, cls),
            (module_params, TransformerModule),
            (datamodule_params, TransformerDataModule),
        ):
            if not isinstance(value, owner.params_type):
                raise TaskError(
                    f"transformer-task needs {owner.__name__}.Params in its params; add them with "
                    "add_argparse_params"
                )
        # optional: a parser built before LoRA existed (a user's task) simply trains every weight
        lora_params = get_params_item(params=params, params_type=LoraParams) or LoraParams()
        return task_params, module_params, datamodule_params, lora_params

    @classmethod
    def setup(cls, params: tuple[ParamType, ...]) -> TransformerTask:
        """The seed's contract (a tuple of parsed params); :meth:`build` does the work, typed."""
        return cls.build(*cls.get_params(params), precision=_precision(params))

    @classmethod
    def build(
        cls,
        task_params: TransformerTaskParams,
        module_params: ModuleParams,
        datamodule_params: DataModuleParams,
        lora_params: LoraParams | None = None,
        precision: str | None = None,
    ) -> TransformerTask:
        """Tokenizer and model (fresh from ``config_path``, or ``init_from``'s, loaded in the dtype the
        trainer's ``precision`` computes in, with LoRA adapters if asked), module and datamodule."""
        max_length = datamodule_params.max_length
        lora_params = lora_params or LoraParams()
        if lora_params.lora_r and not task_params.init_from:
            raise TaskError(
                "--lora_r adapts a pretrained model: pass --init_from MODEL_FOLDER (or --lora_r 0 to train "
                "every weight of a fresh model)"
            )
        if task_params.init_from:
            built = load_pretrained_model_and_tokenizer(
                task_params.init_from, task_params.tokenizer_path, max_length, dtype=weights_dtype(precision)
            )
            if task_params.config_path:
                logger.info(
                    "init_from %s: the model comes from that folder; --config_path %s is not used",
                    task_params.init_from,
                    task_params.config_path,
                )
        else:
            if not task_params.config_path or not task_params.tokenizer_path:
                raise TaskError(
                    "transformer-task needs --config_path and --tokenizer_path (a fresh model), or "
                    "--init_from MODEL_FOLDER (continue pretraining a saved model)"
                )
            built = build_model_and_tokenizer(task_params.config_path, task_params.tokenizer_path, max_length)
        model, lora = built.model, None
        if lora_params.lora_r:
            causal = built.config.objective != "mlm"
            model, lora = apply_lora(model, lora_params, str(task_params.init_from), causal=causal)
        module = TransformerModule(
            model, built.tokenizer, module_params, model_config=built.config, lora=lora
        )
        if datamodule_params.fim_rate and module.objective != "clm":
            raise TaskError("--fim_rate is for causal LMs; set --fim_rate 0 to train a masked LM")
        datamodule = TransformerDataModule(
            tokenizer=built.tokenizer, params=datamodule_params, vocab_size=int(built.model.config.vocab_size)
        )
        return cls(built.tokenizer, module, datamodule)

    @classmethod
    def add_argparse_params(cls, parser: DataclassArgumentParser) -> None:
        parser.add_arguments(cls.Params, title="TransformerTask parameters")
        TransformerModule.add_argparse_params(parser)
        TransformerDataModule.add_argparse_params(parser)
        parser.add_arguments(LoraParams, title="LoRA parameters")


def _precision(params: tuple[ParamType, ...]) -> str | None:
    """The trainer's ``--precision`` among the parsed params, found by its name: the trainer's params
    class lives on the training floor, which tasks do not import."""
    for item in params:
        value = getattr(item, "precision", None)
        if value is not None:
            return str(value)
    return None
