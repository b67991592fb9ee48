"""HCI over TCP on loopback: lets a BLE central in another process use the simulator's in-process air.

Each client connection gets a fresh bumble Controller on the air (like plugging a new dongle in), so
no state of a previous client survives; when the client goes away, its LE connections end with
"connection timeout" at the packs, as a real link's supervision timeout would end them. One client at
a time: a new connection replaces the previous one. Runs on the BLE loop.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.transport.common import StreamPacketSink, StreamPacketSource

log = logging.getLogger(__name__)


class _HciClient(StreamPacketSource):
    def __init__(self, server: "HciTcpServer") -> None:
        super().__init__()
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.controller: Controller | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.server.replace_client(self)
        self.controller = Controller(f"hci-{self.server.port}", host_source=self,
                                     host_sink=StreamPacketSink(transport), link=self.server.air)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_transport_lost()
        self.server.client_gone(self)

    def end(self) -> None:
        """Drop the radio: its connections time out at the peers, the controller leaves the air."""
        controller, self.controller = self.controller, None
        if controller is None:
            return
        controller.host = None
        for connection in list(controller.le_connections.values()):
            try:
                controller.on_hci_disconnect_command(hci.HCI_Disconnect_Command(
                    connection_handle=connection.handle, reason=hci.HCI_CONNECTION_TIMEOUT_ERROR))
            except Exception as exc:  # noqa: BLE001 - the peer may already be gone
                log.debug("ending %s: %s", connection, exc)
        self.server.air.remove_controller(controller)
        if self.transport is not None:
            self.transport.close()


class HciTcpServer:
    """Serves `air` (a bumble LocalLink) as an HCI controller on host:port (loopback only)."""

    def __init__(self, host: str, port: int, air: Any) -> None:
        self.host, self.port, self.air = host, port, air
        self._server: asyncio.Server | None = None
        self._client: _HciClient | None = None

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(lambda: _HciClient(self), self.host, self.port)

    async def stop(self) -> None:
        if self._client is not None:
            self._client.end()
            self._client = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def replace_client(self, client: _HciClient) -> None:
        if self._client is not None:
            self._client.end()
        self._client = client

    def client_gone(self, client: _HciClient) -> None:
        client.end()
        if self._client is client:
            self._client = None
