"""``TransformerModule``: a Hugging Face language model trained by Lightning as masked or causal LM.

Batches arrive as ``{"input_ids", "attention_mask"}`` (see ``TransformerDataModule``); the module turns
them into inputs and labels for the chosen objective and computes a token-weighted cross entropy itself,
so that the validation loss is an exact per-token mean over the whole validation set (and all ranks)
rather than a mean of batch means.

Exact resume: every source of randomness in a training step is re-derived from ``(seed, epoch, batch
index, rank)`` — the MLM mask by a private generator, dropout by reseeding torch's global generator —
so step ``k`` draws the same numbers whether the run got there uninterrupted or from a checkpoint, and
no RNG state has to live in checkpoints. Validation masks use a fixed key per batch, so ``val/loss`` is
comparable between evaluations.

Validation of a causal LM also logs ``val/bits_per_byte`` beside ``val/perplexity``: the epoch's summed
loss in nats over ln 2 times the UTF-8 bytes the scored tokens spell (the ratio of the sums over all
batches and ranks, as evaluate's ``bits_per_byte`` is over the test split). Perplexity per token moves
with the tokenizer; bits per byte does not, so runs with different vocabularies compare on it during
training too. Each token's bytes come from the vocabulary (:func:`gitnetic.data.token_bytes.token_byte_lengths`),
looked up on the scored labels: no RNG, no change to any batch, so training is bit-identical with it.
A masked LM gets none, for the reason evaluate gives none (:mod:`gitnetic.evaluation.evaluate`).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError
from gitnetic.data.token_bytes import token_byte_lengths
from gitnetic.models.config import ModelConfig
from gitnetic.models.lora import LORA_KEY, adapter_state
from gitnetic.models.memory import enable_gradient_checkpointing
from gitnetic.modules.objective import IGNORE_INDEX, check_mask_token, mask_tokens, resolve_objective
from gitnetic.modules.params import ModuleParams
from gitnetic.modules.schedule import polynomial_decay_scheduler, resolve_warmup_steps, warmup_warning

__all__ = ["TransformerModule", "split_weight_decay_params", "token_cross_entropy"]

logger = logging.getLogger(__name__)

_VALIDATION_MASK_KEY = 0x5EED  # fixed: validation masks must not change between evaluations


def split_weight_decay_params(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: decay matrices and embeddings; not biases or norm weights.

    Norm layers are recognised by being 1-D (LayerNorm, RMSNorm and friends all are), which also
    catches biases, so custom norm classes need no registry.
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or name.endswith(".bias") or name == "bias":
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _seed_for(*key: int) -> int:
    """A well-mixed 63-bit seed from a tuple of ints (neighbouring keys give unrelated streams)."""
    return (
        int(
            np.random.SeedSequence([k & 0xFFFFFFFF for k in key])
            .generate_state(2, np.uint32)
            .view(np.uint64)[0]
        )
        >> 1
    )


def _reseed_global(seed: int, device: torch.device) -> None:
    """``torch.manual_seed`` for the CPU generator and this device's only: ~100x cheaper per step."""
    if device.type == "cuda":
        torch.default_generator.manual_seed(seed)
        torch.cuda.manual_seed(seed)  # the current device: each rank owns one
    elif device.type == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def token_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Summed cross entropy over the positions whose label is not ``-100`` (``logits`` aligned to labels)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


class TransformerModule(LightningModule):
    """Trains ``model`` (any HF ``*ForMaskedLM`` / ``*ForCausalLM``) with AdamW and warmup + polynomial decay."""

    Params = ModuleParams
    params: Params
    params_type: type[Params] = Params

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        params: ModuleParams | None = None,
        model_config: ModelConfig | None = None,
        lora: dict[str, Any] | None = None,
    ) -> None:
        """``model_config``: the config ``model`` was built from; its ``objective:`` fills ``auto``.
        ``lora``: the record of :func:`gitnetic.models.lora.apply_lora` when ``model`` trains LoRA adapters:
        checkpoints then hold the adapters alone, and the record (a hyper-parameter) says how to rebuild."""
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.params = params if params is not None else ModuleParams()
        if self.params.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.objective = resolve_objective(self.params.objective, model, model_config)
        check_mask_token(self.objective, tokenizer)
        self.lora = lora
        extra = {LORA_KEY: lora} if lora is not None else {}  # a full fine-tune's hparams stay as they were
        self.save_hyperparameters(
            {
                **self.params.to_dict(),
                "objective": self.objective,
                "model_class": type(model).__name__,
                **extra,
            }
        )
        self._special_ids = torch.tensor(
            sorted(set(getattr(tokenizer, "all_special_ids", []) or [])), dtype=torch.long
        )
        self._vocab_size = min(
            len(tokenizer), int(getattr(getattr(model, "config", None), "vocab_size", len(tokenizer)))
        )
        # Non-padding tokens trained on, summed over ranks; a plain attribute (not a buffer) so exported
        # state dicts hold only model weights, and restored from the checkpoint's "gitnetic" entry.
        self.tokens_seen = 0
        self._tokens_seen_tensor: Tensor | None = None
        self._seed: int | None = None
        self._val_loss_sum: Tensor | None = None
        self._val_token_count: Tensor | None = None
        self._val_byte_count: Tensor | None = None
        # UTF-8 bytes per token id, counted from ``tokenizer`` at the first validation (causal LMs only):
        # modules built to score or export never pay for reading the vocabulary.
        self._token_bytes: Tensor | None = None

    @classmethod
    def add_argparse_params(cls, parser: DataclassArgumentParser) -> None:
        parser.add_arguments(cls.Params, title="TransformerModule parameters")

    # ------------------------------------------------------------------ randomness
    @property
    def seed(self) -> int:
        """The run's seed (Lightning's ``seed_everything`` value), fixed once per fit and checkpointed."""
        if self._seed is None:
            self._seed = int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed() % 2**31))
        return self._seed

    def _rank(self) -> int:
        return int(self.trainer.global_rank) if self._trainer is not None else 0

    def _generator(self, *key: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(_seed_for(*key))
        return generator

    # ------------------------------------------------------------------ objective
    def prepare_batch(
        self, batch: dict[str, Tensor], generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, labels)`` for the objective; labels are unshifted for CLM."""
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        if self.objective == "clm":
            return input_ids, attention_mask, input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        assert generator is not None
        inputs, labels = mask_tokens(
            input_ids,
            attention_mask,
            special_ids=self._special_ids,
            mask_token_id=int(self.tokenizer.mask_token_id),
            vocab_size=self._vocab_size,
            mlm_probability=self.params.mlm_probability,
            generator=generator,
        )
        return inputs, attention_mask, labels

    def logits_and_labels(
        self, batch: dict[str, Tensor], generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """The model's logits and the labels they predict, aligned position by position.

        For CLM the *labels* are shifted left (and padded with ``-100``) rather than the logits cut by
        one position: slicing ``logits[:, :-1]`` copies the whole batch x length x vocab tensor forward
        and again backward, which costs ~15% of a small model's step on CPU. The summed loss and the
        gradients are bit-identical to the sliced form (the padded position is ignored).
        """
        input_ids, attention_mask, labels = self.prepare_batch(batch, generator)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        if self.objective == "clm":
            labels = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
        return logits, labels

    def loss_sum_and_count(
        self, batch: dict[str, Tensor], generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Summed token cross entropy and the number of target tokens in ``batch``."""
        logits, labels = self.logits_and_labels(batch, generator)
        return token_cross_entropy(logits, labels), (labels != IGNORE_INDEX).sum()

    def forward(self, **inputs: Any) -> Any:
        return self.model(**inputs)

    # ------------------------------------------------------------------ training
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout draws from the global generator: make its stream a function of the step alone.
        _reseed_global(_seed_for(self.seed, 1, self.current_epoch, batch_idx, self._rank()), self.device)

    def _is_log_step(self) -> bool:
        """Whether Lightning sends this step's metrics to the loggers (each ``self.log`` costs ~0.1 ms)."""
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 1) or 1))
        return (self.global_step + 1) % every == 0

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        generator = None
        if self.objective == "mlm":
            generator = self._generator(self.seed, 2, self.current_epoch, batch_idx, self._rank())
        loss_sum, count = self.loss_sum_and_count(batch, generator)
        loss = loss_sum / count.clamp(min=1)
        tokens = batch["attention_mask"].sum()
        if self.trainer.world_size > 1:
            tokens = self.trainer.strategy.reduce(tokens, reduce_op="sum")
        if self._tokens_seen_tensor is None or self._tokens_seen_tensor.device != tokens.device:
            self._tokens_seen_tensor = torch.tensor(self.tokens_seen, dtype=torch.long, device=tokens.device)
        self._tokens_seen_tensor += tokens
        if self._is_log_step():  # other steps' values would be dropped unseen anyway
            lr = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else 0.0
            self.log("train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False)
            self.log("train/lr", lr, on_step=True, on_epoch=False)
            self.log(
                "train/tokens", self._tokens_seen_tensor.to(self._wide_float), on_step=True, on_epoch=False
            )
        return loss

    @property
    def _wide_float(self) -> torch.dtype:
        # float64 keeps token counts and loss sums exact well past 2**24; MPS has no float64.
        return torch.float32 if self.device.type == "mps" else torch.float64

    def on_train_epoch_end(self) -> None:
        self._sync_tokens_seen()

    def on_train_end(self) -> None:
        self._sync_tokens_seen()

    def _sync_tokens_seen(self) -> None:
        if self._tokens_seen_tensor is not None:
            self.tokens_seen = int(self._tokens_seen_tensor.item())

    # ------------------------------------------------------------------ validation
    def token_bytes(self) -> Tensor | None:
        """``lengths[id]``: the UTF-8 bytes token ``id`` spells, on this module's device; None for a
        masked LM or a tokenizer without a ``tokenizers`` backend to read the vocabulary from."""
        if self.objective != "clm":
            return None
        if self._token_bytes is None:
            backend = getattr(self.tokenizer, "backend_tokenizer", self.tokenizer)
            if not hasattr(backend, "to_str"):
                return None
            size = int(getattr(getattr(self.model, "config", None), "vocab_size", 0) or len(self.tokenizer))
            self._token_bytes = torch.from_numpy(token_byte_lengths(self.tokenizer, size))
        if self._token_bytes.device != self.device:
            self._token_bytes = self._token_bytes.to(self.device)
        return self._token_bytes

    def on_validation_epoch_start(self) -> None:
        self._val_loss_sum = torch.zeros((), dtype=self._wide_float, device=self.device)
        self._val_token_count = torch.zeros((), dtype=torch.long, device=self.device)
        self._val_byte_count = None if self.token_bytes() is None else torch.zeros_like(self._val_token_count)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        generator = None
        if self.objective == "mlm":
            generator = self._generator(_VALIDATION_MASK_KEY, dataloader_idx, batch_idx, self._rank())
        logits, labels = self.logits_and_labels(batch, generator)
        scored = labels != IGNORE_INDEX
        self._val_loss_sum += token_cross_entropy(logits, labels).to(self._wide_float)
        self._val_token_count += scored.sum()
        if self._val_byte_count is not None:
            lengths = self.token_bytes()
            assert lengths is not None
            # padded positions look up id 0 and are zeroed: no boolean indexing, so no device sync
            self._val_byte_count += torch.where(scored, lengths[labels.clamp(min=0)], 0).sum()

    def on_validation_epoch_end(self) -> None:
        loss_sum, count, nbytes = self._val_loss_sum, self._val_token_count, self._val_byte_count
        if loss_sum is None or count is None:
            return
        if self.trainer.world_size > 1:
            loss_sum = self.trainer.strategy.reduce(loss_sum, reduce_op="sum")
            count = self.trainer.strategy.reduce(count, reduce_op="sum")
            if nbytes is not None:
                nbytes = self.trainer.strategy.reduce(nbytes, reduce_op="sum")
        loss = (loss_sum / count.clamp(min=1)).float()
        # Values are already global; sync_dist only keeps Lightning's bookkeeping rank-consistent.
        self.log("val/loss", loss, sync_dist=True, prog_bar=True)
        self.log("val/perplexity", torch.exp(loss.clamp(max=80.0)), sync_dist=True)
        if nbytes is not None and int(nbytes) > 0:  # no bytes (only special tokens scored): no ratio
            # the ratio of the epoch's sums over all ranks, never a mean of per-batch ratios
            bits = (loss_sum / (math.log(2) * nbytes.to(loss_sum.dtype))).float()
            self.log("val/bits_per_byte", bits, sync_dist=True)

    # ------------------------------------------------------------------ optimization
    def configure_optimizers(self) -> Any:
        p = self.params
        max_steps = int(self.trainer.max_steps)
        if max_steps <= 0:
            estimated = self.trainer.estimated_stepping_batches
            if not math.isfinite(estimated):
                raise ConfigError("set --max_steps (or --max_epochs): the LR schedule needs a finite length")
            max_steps = int(estimated)
        warmup_steps = resolve_warmup_steps(p.warmup_steps, max_steps)
        warning = warmup_warning(warmup_steps, max_steps)
        if warning and self._rank() == 0:
            logger.warning("train: %s", warning)
        groups = split_weight_decay_params(self.model, p.weight_decay)
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(
            groups, lr=p.learning_rate, betas=tuple(p.betas), eps=p.eps, fused=fused or None
        )
        scheduler = polynomial_decay_scheduler(
            optimizer,
            lr=p.learning_rate,
            lr_end=p.learning_rate_end,
            warmup_steps=warmup_steps,
            max_steps=max_steps,
            power=p.power,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._sync_tokens_seen()
        if self.lora is not None:  # the frozen base is the --init_from folder's, recorded in the hparams
            checkpoint["state_dict"] = adapter_state(self.model, checkpoint["state_dict"], prefix="model.")
        checkpoint["gitnetic"] = {
            "tokens_seen": self.tokens_seen,
            "seed": self.seed,
            "objective": self.objective,
            "model_class": type(self.model).__name__,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved_lora = (checkpoint.get("hyper_parameters") or {}).get(LORA_KEY)
        if (saved_lora is None) != (self.lora is None):
            kinds = (
                ("a LoRA run's", "a full fine-tune") if saved_lora else ("a full fine-tune's", "a LoRA run")
            )
            raise ConfigError(
                f"the checkpoint to resume from is {kinds[0]}, and this is {kinds[1]}; resume with the same "
                "--lora_r it was written with, or start fresh (--resume_from_checkpoint unset)"
            )
        if self.lora is not None:  # resuming: the frozen base weights are the ones loaded already
            checkpoint["state_dict"] = {**self.state_dict(), **checkpoint["state_dict"]}
        state = checkpoint.get("gitnetic", {})
        self.tokens_seen = int(state.get("tokens_seen", 0))
        self._tokens_seen_tensor = None
        if "seed" in state:
            self._seed = int(state["seed"])
