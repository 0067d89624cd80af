"""The CCSR-v2 ControlNet: diffusers' ControlNetModel conditioned on the VAE latent of the LR image.

CCSR-v2 (csslc/CCSR, branch CCSR-v2.0, ``models/controlnet.py``) trains a ControlNet whose
condition is not the RGB image through the usual 4-layer conditioning embedding but the
VAE-encoded LR latent through one 3x3 convolution, ``condition_conv_in`` (latent channels ->
``block_out_channels[0]``). The config key ``use_vae_encode_condition`` selects it; with it set,
the released weights hold ``condition_conv_in.*`` and no ``controlnet_cond_embedding.*``.
Everything else (time embedding, down blocks, mid block, zero convolutions) is diffusers'
ControlNetModel unchanged, so this class reuses it and only swaps the conditioning input.

Written against the official code, not copied from it; see ``methods/ccsr.py`` for the commit.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ControlNetModel
from diffusers.configuration_utils import register_to_config
from torch import nn

#: the class name the official release writes into ``controlnet/config.json``
OFFICIAL_CLASS_NAME = "ControlNetModel"


class _Precomputed(nn.Module):
    """Stands in for ``controlnet_cond_embedding``: the condition arrives already embedded.

    It has no parameters, so the state dict keeps exactly the released keys.
    """

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return cond


class CCSRControlNetModel(ControlNetModel):
    """diffusers ``ControlNetModel`` plus ``use_vae_encode_condition`` (CCSR-v2).

    With ``use_vae_encode_condition=True`` (the released CCSR-v2 weights) the forward pass takes
    ``vae_encode_condition_hidden_states``, the scaled VAE latent of the LR image with the
    same spatial size as ``sample``, and adds ``condition_conv_in`` of it to ``conv_in(sample)``.
    With ``False`` it is the plain diffusers ControlNet on an RGB ``controlnet_cond``.

    The signature repeats every config key of diffusers' ControlNetModel so that
    ``from_pretrained`` passes the release's ``config.json`` through unchanged (diffusers takes
    the accepted keys from the signature, not from the parent class).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        conditioning_channels: int = 3,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        mid_block_type: str | None = "UNetMidBlock2DCrossAttn",
        only_cross_attention: bool | tuple[bool, ...] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int = 1280,
        transformer_layers_per_block: int | tuple[int, ...] = 1,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        attention_head_dim: int | tuple[int, ...] = 8,
        num_attention_heads: int | tuple[int, ...] | None = None,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        projection_class_embeddings_input_dim: int | None = None,
        controlnet_conditioning_channel_order: str = "rgb",
        conditioning_embedding_out_channels: tuple[int, ...] | None = (16, 32, 96, 256),
        global_pool_conditions: bool = False,
        addition_embed_type_num_heads: int = 64,
        use_vae_encode_condition: bool = False,
    ) -> None:
        # register_to_config on this __init__ records every argument (use_vae_encode_condition
        # included); the parent's own decorator then re-records the shared ones unchanged.
        super().__init__(
            in_channels=in_channels,
            conditioning_channels=conditioning_channels,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            down_block_types=down_block_types,
            mid_block_type=mid_block_type,
            only_cross_attention=only_cross_attention,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            downsample_padding=downsample_padding,
            mid_block_scale_factor=mid_block_scale_factor,
            act_fn=act_fn,
            norm_num_groups=norm_num_groups,
            norm_eps=norm_eps,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            encoder_hid_dim=encoder_hid_dim,
            encoder_hid_dim_type=encoder_hid_dim_type,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            use_linear_projection=use_linear_projection,
            class_embed_type=class_embed_type,
            addition_embed_type=addition_embed_type,
            addition_time_embed_dim=addition_time_embed_dim,
            num_class_embeds=num_class_embeds,
            upcast_attention=upcast_attention,
            resnet_time_scale_shift=resnet_time_scale_shift,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            controlnet_conditioning_channel_order=controlnet_conditioning_channel_order,
            conditioning_embedding_out_channels=conditioning_embedding_out_channels,
            global_pool_conditions=global_pool_conditions,
            addition_embed_type_num_heads=addition_embed_type_num_heads,
        )
        self.use_vae_encode_condition = bool(use_vae_encode_condition)
        if self.use_vae_encode_condition:
            if controlnet_conditioning_channel_order != "rgb":
                # the parent would flip the channels of the (already embedded) latent feature map
                raise ValueError("use_vae_encode_condition=True needs controlnet_conditioning_channel_order='rgb', "
                                 f"got {controlnet_conditioning_channel_order!r}")
            # the official layer: same shape as conv_in (latent channels -> first block width)
            self.condition_conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
            self.controlnet_cond_embedding = _Precomputed()

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        controlnet_cond: torch.Tensor | None = None,
        conditioning_scale: float = 1.0,
        vae_encode_condition_hidden_states: torch.Tensor | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ):
        """ControlNet residuals for ``sample`` at ``timestep``.

        ``vae_encode_condition_hidden_states`` (``[B, C_latent, h, w]``, scaled like the UNet's
        latents) is required when ``use_vae_encode_condition`` is set; ``controlnet_cond``
        (RGB in [0, 1] at 8x the latent size) otherwise. Other keyword arguments go to diffusers.
        """
        if self.use_vae_encode_condition:
            if vae_encode_condition_hidden_states is None:
                raise ValueError("this CCSR ControlNet has use_vae_encode_condition=True: pass "
                                 "vae_encode_condition_hidden_states (the scaled VAE latent of the LR image)")
            if vae_encode_condition_hidden_states.shape[-2:] != sample.shape[-2:]:
                raise ValueError(f"condition latent {list(vae_encode_condition_hidden_states.shape)} and sample "
                                 f"{list(sample.shape)} differ in spatial size")
            controlnet_cond = self.condition_conv_in(vae_encode_condition_hidden_states.to(sample.dtype))
        elif controlnet_cond is None:
            raise ValueError("this ControlNet has use_vae_encode_condition=False: pass controlnet_cond (RGB image)")
        return super().forward(sample, timestep, encoder_hidden_states, controlnet_cond,
                               conditioning_scale=conditioning_scale, return_dict=return_dict, **kwargs)

    def to_json_string(self) -> str:
        # Keep the official class name in config.json so that folders we write (tests, tiny
        # models) have exactly the release's layout and the official code can load them too.
        text = super().to_json_string()
        return text.replace(f'"_class_name": "{type(self).__name__}"', f'"_class_name": "{OFFICIAL_CLASS_NAME}"', 1)
