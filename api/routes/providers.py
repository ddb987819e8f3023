"""/v1/providers: every provider, its capabilities, its operations and each operation's JSON input schema."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Authed
from models.schemas import OperationPublic, ProviderPublic, ProvidersPublic
from providers.registry import ADAPTERS

router = APIRouter(prefix="/v1/providers", tags=["providers"], dependencies=[Authed])


@router.get("", response_model=ProvidersPublic)
def list_providers() -> ProvidersPublic:
    return ProvidersPublic(
        providers=[
            ProviderPublic(
                name=a.name,
                max_batch=a.capabilities.max_batch,
                expected_s=a.capabilities.expected_s,
                deadline_s=a.capabilities.deadline_s,
                result_ttl_s=a.capabilities.result_ttl_s,
                cancels=a.capabilities.cancels,
                oneshot=a.capabilities.oneshot,
                request_timeout_s=a.capabilities.request_timeout_s,
                route_prefix=a.capabilities.route_prefix,
                lost_submit=a.capabilities.lost_submit.value,
                callback_auth=a.capabilities.callback_auth.value,
                operations=[OperationPublic(name=o.name, description=o.description, input_schema=o.schema.model_json_schema()) for o in a.operations.values()],
            )
            for a in ADAPTERS.values()
        ]
    )
