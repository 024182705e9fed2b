from uuid import UUID

from pydantic import BaseModel, ConfigDict

from .models import Role


class Me(BaseModel):
    """The signed-in user."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7d1c1a7e-4a8e-4c47-9d7e-1f0a3c2b5e61",
                    "email": "ana@acme.example",
                    "name": "Ana Souza",
                    "role": "employee",
                    "company_id": "0b6c3d1e-2f4a-4b5c-8d9e-0a1b2c3d4e5f",
                    "company_name": "Acme",
                }
            ]
        }
    )

    id: UUID
    email: str
    name: str
    role: Role
    company_id: UUID
    company_name: str
