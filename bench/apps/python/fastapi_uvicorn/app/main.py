"""A small inventory API: FastAPI routes, pydantic models with validation, JSON in and out."""
import asyncio
import sys
from datetime import datetime, timezone

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field, computed_field

app = FastAPI(title="Inventory", version="1.0")

TAX_RATE = 0.2


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    price: float = Field(gt=0)
    tags: list[str] = []


class Item(ItemIn):
    id: int
    created: datetime

    @computed_field
    @property
    def price_with_tax(self) -> float:
        return round(self.price * (1 + TAX_RATE), 2)


ITEMS: dict[int, Item] = {}


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness, plus which event loop and HTTP parser the server runs on."""
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    http = "httptools" if "uvicorn.protocols.http.httptools_impl" in sys.modules else "h11"
    return {"status": "ok", "loop": loop, "http": http}


@app.post("/items", response_model=Item, status_code=201)
def create_item(item: ItemIn) -> Item:
    new = Item(id=len(ITEMS) + 1, created=datetime.now(timezone.utc), **item.model_dump())
    ITEMS[new.id] = new
    return new


@app.get("/items/{item_id}", response_model=Item)
def read_item(item_id: int) -> Item:
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    return ITEMS[item_id]


@app.get("/items", response_model=list[Item])
def list_items(tag: str | None = None) -> list[Item]:
    return [i for i in ITEMS.values() if tag is None or tag in i.tags]
