"""One ``APIRouter`` per resource: health, predict, models, train."""
