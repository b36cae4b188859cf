# SPDX-License-Identifier: GPL-3.0-or-later
'''python3-dbusmock template: xdg-desktop-portal's org.freedesktop.portal.Background.

RequestBackground answers with a Request object at the path the caller predicts from its
unique name and handle_token, then emits Response on it, as the real portal does. The answer is
the property Response of io.github.tocsin.Test (0: granted, 1: refused), which a test sets
with org.freedesktop.DBus.Properties.Set. dbusmock logs the calls (GetCalls).
'''

import dbus
import dbus.service
from gi.repository import GLib

BUS_NAME = 'org.freedesktop.portal.Desktop'
MAIN_OBJ = '/org/freedesktop/portal/desktop'
MAIN_IFACE = 'org.freedesktop.portal.Background'
SYSTEM_BUS = False
TEST_IFACE = 'io.github.tocsin.Test'
REQUEST_IFACE = 'org.freedesktop.portal.Request'


def load(mock, parameters):
    mock.AddProperty(MAIN_IFACE, 'version', dbus.UInt32(1))
    mock.AddProperty(TEST_IFACE, 'Response', dbus.UInt32(parameters.get('response', 0)))


@dbus.service.method(MAIN_IFACE, in_signature='sa{sv}', out_signature='o',
                     sender_keyword='sender')
def RequestBackground(self, parent_window, options, sender=None):
    token = str(options.get('handle_token', 'request'))
    path = '/org/freedesktop/portal/desktop/request/%s/%s' % (
        sender[1:].replace('.', '_'), token)
    response = int(self.props[TEST_IFACE]['Response'])
    autostart = bool(options.get('autostart', False)) and response == 0
    if path not in dbusmock_objects():
        self.AddObject(path, REQUEST_IFACE, {}, [])

    def answer():
        dbusmock_objects()[path].EmitSignal(
            REQUEST_IFACE, 'Response', 'ua{sv}',
            [dbus.UInt32(response), {'background': dbus.Boolean(response == 0, variant_level=1),
                                     'autostart': dbus.Boolean(autostart, variant_level=1)}])
        return False

    # After the reply, as the real portal answers once the user has.
    GLib.idle_add(answer)
    return dbus.ObjectPath(path)


def dbusmock_objects():
    from dbusmock.mockobject import objects  # pylint: disable=import-outside-toplevel
    return objects
