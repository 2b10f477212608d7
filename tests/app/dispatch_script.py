# The seed guide's "Dispatching outside a request" script, plus waiting for the result.
import asyncio
import sys

from app.tasks import send_welcome_email
from bootstrap.broker import broker


async def main() -> None:
    await broker.startup()
    try:
        task = await send_welcome_email.kiq(int(sys.argv[1]))
        result = await task.wait_result(timeout=30)
        if not result.is_err:
            print(result.return_value)
    finally:
        await broker.shutdown()


asyncio.run(main())
