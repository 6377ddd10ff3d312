"""HTTP routes by role; each module holds one APIRouter."""
