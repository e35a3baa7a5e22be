"""Every text of the UI, one dict per language: the single place to translate the app.

The Spanish dict `ES` is assembled from one dict per area (below, in page order). Templates read it as
`t.key` (set for every template by routes/__init__.py, in the browser's language); `{name}` placeholders
are filled in with `t.key.format(name=...)`. Scripts read the keys of `SCRIPT_AREAS` from the JSON blob
`#ui-texts` that base.html renders on the pages that set `ui_texts` (see `for_scripts`).
A new language is a new dict with the same keys, registered in `LANGUAGES`; a missing key falls back to
Spanish.
"""

DEFAULT_LANGUAGE = "es"

# Agents' panel (templates/chats/panel.html, static/panel.js) and message bubbles (static/messages.js).
PANEL = {
    "locale": "es",
    # bubbles (static/messages.js)
    "tick_pending": "Pendiente de envío", "tick_sending": "Enviando", "tick_sent": "Enviado",
    "tick_delivered": "Entregado", "tick_read": "Leído", "tick_played": "Reproducido", "tick_received": "Recibido",
    "tick_failed": "Falló", "unknown_error": "error desconocido", "error_code": "código",
    "not_delivered": "No entregado: {reason}",
    "media_failed": "⚠ No se pudo obtener el archivo: {error}", "media_processing_audio": "Procesando audio…",
    "media_downloading": "Descargando archivo…", "media_missing": "Archivo no disponible",
    "sticker": "Sticker", "image": "Imagen", "document": "Documento", "document_badge": "DOC",
    "location": "Ubicación", "open_map": "Ver en el mapa", "contact": "Contacto",
    "transcription": "Transcripción: {text}", "transcribing": "Transcribiendo…",
    "not_transcribed": "No transcrito: {reason}",
    "list_reply": "Respuesta de lista", "button_reply": "Respuesta de botón", "form_reply": "Respuesta de formulario",
    "template_button": "Botón de plantilla", "template_named": "Plantilla «{name}»", "reaction": "Reacción",
    "reaction_removed": "Reacción quitada", "forwarded": "Reenviado", "see_options": "Ver opciones",
    "sender_agent": "Asesor", "sender_bot": "Bot",
    "type_unsupported": "Mensaje no admitido por WhatsApp", "type_sticker": "Sticker", "type_order": "Pedido",
    "type_system": "Aviso del sistema", "type_unknown": "Mensaje de un tipo desconocido",
    # chat list
    "page_title": "Chats", "chats": "Chats", "search": "Buscar por número, alias o texto", "search_label": "Buscar",
    "filter_all": "Todos", "filter_bot": "Bot", "filter_human": "Asesor", "filter_closed": "Cerrados",
    "filter_state": "Filtrar por estado", "all_roles": "Rol: todos", "filter_role": "Filtrar por rol",
    "no_chats": "Todavía no hay conversaciones.", "no_matches": "Ningún chat coincide con la búsqueda.",
    "more_chats": "Cargar más chats", "loading": "Cargando…", "unread": "{count} sin leer",
    "state_bot": "Bot", "state_human": "Asesor", "state_closed": "Cerrado",
    "state_bot_long": "Atiende el bot", "state_human_long": "Atiende un asesor", "state_closed_long": "Cerrado",
    "window_open": "Ventana de 24 h abierta: se puede escribir libremente",
    "window_closed": "Pasaron más de 24 h desde el último mensaje del cliente: solo plantillas",
    "window_closed_short": "Fuera de 24 h", "window_24h": "24 h",
    "sentiment_positivo": "Sentimiento positivo", "sentiment_neutral": "Sentimiento neutral",
    "sentiment_negativo": "Sentimiento negativo", "no_messages_yet": "Sin mensajes",
    "yesterday": "Ayer",
    # conversation
    "choose_chat": "Elija una conversación para verla aquí.",
    "choose_chat_help": "Los mensajes nuevos, los estados de entrega y los cambios de la lista llegan solos.",
    "back": "Volver a la lista", "take_over": "Tomar", "take_over_help": "Atender yo: el bot deja de responder",
    "hand_back": "Devolver al bot", "hand_back_help": "El bot vuelve a responder desde el paso en que estaba",
    "close": "Cerrar chat", "close_help": "El próximo mensaje del cliente empieza de nuevo",
    "close_confirm": "¿Cerrar esta conversación? El próximo mensaje del cliente empezará desde el inicio.",
    "alias": "Alias", "alias_edit": "Cambiar alias", "alias_label": "Alias del cliente",
    "alias_help": "Un nombre para reconocer al cliente; vacío para quitarlo.", "save": "Guardar",
    "cancel": "Cancelar", "roles": "Roles", "roles_edit": "Roles del chat",
    "roles_help": "Los asesores ven solo los chats de sus roles.", "no_roles": "Sin roles",
    "older_loading": "Cargando mensajes anteriores…", "history_start": "Inicio de la conversación",
    "empty_conversation": "Todavía no hay mensajes en esta conversación.",
    # reply box
    "write": "Escribe un mensaje", "message_label": "Mensaje", "send": "Enviar", "send_help": "Enviar (Intro)",
    "attach": "Adjuntar archivo", "attach_help": "Adjuntar: {types}",
    "attach_caption": "Texto que acompaña al archivo (opcional)", "attach_send": "Enviar archivo",
    "attach_too_big": "«{name}» supera el máximo de {mb} MB para {kind}.",
    "attach_bad_type": "Tipo de archivo no admitido ({ext}). Se aceptan: {types}.",
    "quick_replies": "Respuestas rápidas", "quick_reply_files": "{count} archivo(s)",
    "quick_none": "No hay respuestas rápidas; un administrador las crea en Configuración → Botones.",
    "send_list": "Enviar una lista", "list_title": "Enviar una lista de opciones",
    "list_text": "Texto del mensaje", "list_options": "Opciones (una por línea, hasta 10)",
    "list_as_buttons": "Enviar como botones (hasta 3 opciones)", "list_send": "Enviar lista",
    "template_only": "Fuera de la ventana de 24 horas solo se pueden enviar plantillas aprobadas.",
    "template_name": "Nombre de la plantilla", "template_language": "Idioma", "template_send": "Enviar plantilla",
    # errors and connection
    "error_network": "Sin conexión con el servidor; inténtelo de nuevo.",
    "error_status": "Error {status}: no se pudo completar la acción.",
    "error_session": "La sesión expiró: vuelva a iniciar sesión.", "login": "Iniciar sesión",
    "error_gone": "Ese chat ya no existe o ya no tiene acceso a él.",
    "live_reconnecting": "Sin conexión en vivo; reconectando…", "live_ok": "En vivo",
    "sent_ok": "Enviado",
}

# Simulator page (static/simulator.js): texts the script writes.
SIMULATOR_SCRIPT = {
    "sim_state_new": "Conversación nueva", "sim_state_bot": "Bot automático",
    "sim_state_human": "Atendido por un asesor", "sim_state_closed": "Conversación cerrada",
    "sim_options": "Opciones",
    "sim_session_expired": "Sesión expirada: vuelva a iniciar sesión.",
    "sim_disabled_error": "El simulador está desactivado (WHATSAPP_TRANSPORT no es sandbox).",
    "sim_send_error": "Error {status} al enviar el mensaje.",
    "sim_send_offline": "No se pudo enviar: sin conexión con el servidor.",
    "sim_read_error": "Error {status} al leer la conversación.",
    "sim_poll_offline": "Sin conexión con el servidor; reintentando…",
    "sim_bad_number": "Número inválido: use entre 6 y 15 dígitos, por ejemplo 999000001.",
    "sim_empty_message": "Escriba un mensaje antes de enviar.",
    "sim_audio_bad_type": "Tipo de archivo no admitido. Audios admitidos: {types}.",
    "sim_audio_too_big": "El audio supera el máximo de {mb} MB.",
    "sim_disabled_placeholder": "Simulador desactivado",
}

# Tablero (static/tablero.js): chart labels and figures the script writes.
TABLERO_SCRIPT = {
    "tab_load_error": "Error {status} al cargar «{name}».", "tab_no_data": "sin datos",
    "tab_seconds": "{n} s", "tab_minutes": "{n} min", "tab_hours": "{n} h",
    "tab_incoming": "Entrantes", "tab_outgoing": "Salientes", "tab_messages": "Mensajes", "tab_times": "Veces",
    "tab_words_note": "Sobre los {sample} mensajes de clientes más recientes del rango (máximo {limit}).",
    "tab_first_reply": "Primera respuesta", "tab_agent_reply": "Respuesta de agente",
    "tab_median": "Mediana", "tab_mean": "Media", "tab_minutes_axis": "minutos",
    "tab_no_errors": "Sin errores en el rango",
}

# Layout (templates/base.html) and texts shared by several admin pages.
COMMON = {
    "app_name": "WhatsApp IA",
    "nav_chats": "Chats", "nav_simulator": "Simulador", "nav_tablero": "Tablero", "nav_rules": "Reglas",
    "nav_quick_replies": "Botones", "nav_roles": "Roles", "nav_webhooks": "Webhooks", "nav_logout": "Salir",
    "edit": "Editar", "delete": "Eliminar", "move_up": "Subir", "move_down": "Bajar",
    "max_mb": "máximo {mb} MB", "badge_initial": "inicial",
    # templates/_forms.html
    "form_check_fields": "Revise los campos marcados.", "unit_bytes": "bytes",
}

# Login (templates/login.html).
LOGIN = {"login_title": "Iniciar sesión", "login_submit": "Entrar"}

# Rules admin (templates/config/rules.html, rule_form.html, import.html, flow.html).
RULES = {
    "rules_title": "Reglas", "rules_heading": "Reglas del bot", "back_to_rules": "← Reglas",
    "rules_import": "Importar .xlsx", "rules_export": "Exportar .xlsx", "rules_see_flow": "Ver flujo",
    "rules_hint_before": "En cada paso se prueban las reglas por prioridad (1 primero); las reglas",
    "rules_hint_after": "responden a cualquier otro mensaje y se prueban al final.",
    "rules_step": "Paso", "rules_priority": "Prioridad", "rules_default": "por defecto",
    "rules_options": "Opciones:", "rules_advances": "(avanza sin esperar)", "rules_role": "Rol:",
    "rules_handler": "Handler:", "rules_file": "Archivo:", "rules_delete_confirm": "Sí, eliminar la regla",
    "rules_empty": "Todavía no hay reglas. Cree una o importe un archivo .xlsx.",
    # rule form
    "rule_new": "Nueva regla", "rule_edit": "Editar regla", "rule_edit_heading": "Editar regla {id}",
    "rule_hint_step": "Nombre del paso en que se aplica la regla (hasta 120 caracteres).",
    "rule_hint_input": "Palabras o frases separadas por comas, o * para cualquier otro mensaje.",
    "rule_hint_priority": "1 se prueba primero.",
    "rule_hint_response": "Texto que envía el bot (en lista y botones, el texto que los acompaña).",
    "rule_hint_options": "Lista: 1 a 10 filas de hasta 24 caracteres. Botones: 1 a 3 de hasta 20 caracteres.",
    "rule_hint_next": "Paso al que pasa el chat; vacío para quedarse.",
    "rule_hint_role": "El chat queda asignado a este rol.", "rule_hint_handler": "Función que calcula la respuesta.",
    "rule_hint_calc": "Por ejemplo: precio_m2=350000; moneda=$",
    "rule_file_legend": "Archivo (tipos imagen, documento, audio y video)",
    "rule_hint_media_url": "URL http:// o https:// del archivo; o bien suba uno aquí abajo.",
    "rule_current_file": "Archivo actual:",
    # import
    "import_title": "Importar reglas", "import_hint_before": "Un libro .xlsx (máximo {mb} MB) cuya primera fila tenga los encabezados",
    "import_hint_after": "La importación es todo o nada: si alguna fila tiene un error no cambia nada.",
    "import_submit": "Importar", "import_done": "Se importaron {count} reglas",
    "import_replaced": "(reemplazan a las {count} anteriores)", "import_see_rules": "Ver las reglas",
    "import_failed_one": "No se importó nada: corrija este error y vuelva a intentarlo.",
    "import_failed_other": "No se importó nada: corrija estos {count} errores y vuelva a intentarlo.",
    "import_row": "Fila", "import_problem": "Problema",
    # flow
    "flow_title": "Flujo", "flow_heading": "Flujo del bot", "flow_svg_title": "Pasos del bot y flechas entre ellos",
    "flow_no_rules": "sin reglas", "flow_rule_count_one": "{count} regla", "flow_rule_count_other": "{count} reglas",
    "flow_steps": "Pasos y salidas", "flow_leads_to": "lleva a", "flow_advances": "(avanza)",
    "flow_no_exit": "No lleva a otro paso.", "flow_empty": "Todavía no hay reglas; el flujo aparece cuando se crean.",
}

# Roles and users (templates/roles/*.html).
ROLES = {
    "roles_title": "Roles y usuarios", "back_to_roles": "← Roles y usuarios", "user_new": "Nuevo usuario",
    "roles_hint_before": "Un agente ve solo los chats de sus roles; los administradores ven todos. Una regla del bot con",
    "roles_hint_after": "asigna el chat al rol que tenga ese nombre o esa palabra clave.",
    "roles_heading": "Roles", "role_name_placeholder": "Ventas",
    "role_keywords_hint": "Otras palabras que llevan a este rol, por ejemplo: comercial, cotización",
    "role_keywords_placeholder": "comercial, cotización", "role_create": "Crear rol",
    "role_users_one": "{count} usuario", "role_users_other": "{count} usuarios",
    "role_chats_one": "{count} chat", "role_chats_other": "{count} chats",
    "role_rules_one": "{count} regla del bot", "role_rules_other": "{count} reglas del bot",
    "role_delete_hint": "Se quitará de {users} usuario(s) y {chats} chat(s).",
    "role_delete_rules_hint": "Las reglas que lo asignan lo volverán a crear, vacío.",
    "role_delete_confirm": "Sí, eliminar el rol", "roles_empty": "Todavía no hay roles.",
    "users_heading": "Usuarios", "badge_admin": "administrador", "badge_inactive": "desactivado", "badge_you": "usted",
    "user_roles": "Roles: {roles}", "user_no_roles": "Sin roles: no ve ningún chat", "user_all_chats": "Ve todos los chats",
    "user_last_login": "Último ingreso: {when}", "user_never": "nunca",
    # new user, role and user forms
    "user_hint_username": "2 a 80 letras, números o . @ + - _", "user_hint_password": "Al menos 8 caracteres.",
    "roles_none_yet": "Todavía no hay roles; créelos en la página de roles.", "user_create": "Crear usuario",
    "role_title": "Rol {name}", "role_heading": "Rol «{name}»",
    "role_hint_rename": "Cambiar el nombre no quita el rol a sus usuarios ni a sus chats.",
    "role_hint_keywords": "Una regla con rol_keyword igual al nombre o a una de estas palabras asigna el chat a este "
                          "rol. Se comparan sin mayúsculas ni acentos.",
    "user_title": "Usuario {name}", "user_access_heading": "Permisos y roles",
    "user_self_admin": "No puede quitarse a sí mismo el permiso de administrador.",
    "user_save_access": "Guardar permisos", "user_password_heading": "Cambiar la contraseña",
    "user_password_submit": "Cambiar contraseña", "user_login_heading": "Acceso", "user_can_login": "El usuario puede entrar.",
    "user_deactivate_hint": "Al desactivarlo no podrá iniciar sesión y sus sesiones abiertas dejan de funcionar.",
    "user_self_deactivate": "No puede desactivar su propia cuenta.", "user_deactivate": "Desactivar usuario",
    "user_inactive": "El usuario está desactivado: no puede iniciar sesión.", "user_activate": "Activar usuario",
}

# Quick replies admin (templates/quick_replies/*.html).
QUICK_REPLIES = {
    "qr_title": "Respuestas rápidas", "back_to_qr": "← Respuestas rápidas", "qr_new": "Nuevo botón",
    "qr_hint": "Los agentes ven estos botones, en este orden, junto al cuadro de respuesta del chat; al pulsarlos se "
               "envía el texto y los archivos del botón.",
    "qr_delete_confirm": "Sí, eliminar el botón", "qr_delete_files": "y sus archivos",
    "qr_empty": "Todavía no hay respuestas rápidas. Cree la primera con «Nuevo botón».",
    "qr_edit": "Editar botón", "qr_edit_heading": "Editar botón «{title}»",
    "qr_hint_title": "Lo que ve el agente en el botón (hasta 60 caracteres).",
    "qr_hint_text": "Puede quedar vacío si el botón envía archivos.", "qr_current_files": "Archivos actuales",
    "qr_remove": "Quitar", "qr_hint_files": "Puede elegir varios a la vez; hasta {mb} MB por envío.",
}

# Simulator page (templates/sandbox/simulator.html); the bubbles use PANEL, the script SIMULATOR_SCRIPT.
SIMULATOR = {
    "sim_title": "Simulador",
    "sim_help": "Escriba como si fuera un cliente de WhatsApp: cada mensaje recorre el mismo camino que uno real "
                "(webhook, bot y asesores) y aquí aparecen las respuestas.",
    "sim_only_sandbox": "El simulador solo funciona con", "sim_with_transport": ": con el transporte",
    "sim_would_send": "las respuestas del bot se enviarían de verdad por WhatsApp.",
    "sim_number_label": "Número del cliente simulado", "sim_number_title": "Entre 6 y 15 dígitos",
    "sim_new": "Nueva conversación", "sim_legend_sent": "enviado", "sim_legend_delivered": "entregado",
    "sim_legend_read": "leído", "sim_legend_failed": "fallido", "sim_conversation": "Conversación",
    "sim_empty": "Escriba «hola» para empezar la conversación.",
    "sim_audio_title": "Enviar un audio ({types}; hasta {mb} MB)", "sim_audio": "Enviar audio", "sim_close": "Cerrar",
}

# Tablero page (templates/tablero/index.html).
TABLERO = {
    "tab_title": "Tablero", "tab_utc": "Fechas en UTC.", "tab_own_roles": "Solo se cuentan los chats de sus roles.",
    "tab_from": "Desde", "tab_to": "Hasta", "tab_role": "Rol", "tab_all": "Todos", "tab_all_mine": "Todos mis roles",
    "tab_number": "Número", "tab_apply": "Aplicar", "tab_csv": "CSV del rango", "tab_zip": "ZIP de JSON",
    "tab_kpi_chats": "Chats atendidos", "tab_kpi_first": "Primera respuesta (mediana)",
    "tab_kpi_agent": "Respuesta de agente (mediana)",
    "tab_chart_daily": "Mensajes por día", "tab_chart_hourly": "Por hora del día", "tab_chart_types": "Tipos de mensaje",
    "tab_chart_senders": "Quién escribe", "tab_chart_top": "Números con más mensajes",
    "tab_chart_words": "Palabras frecuentes", "tab_chart_sentiment": "Sentimiento",
    "tab_chart_sentiment_daily": "Sentimiento por día", "tab_chart_attention": "Chats: solo bot o con agente",
    "tab_chart_reply_times": "Tiempos de respuesta (minutos)", "tab_chart_voice": "Notas de voz",
    "tab_chart_deliveries": "Entregas salientes", "tab_code": "Código", "tab_error": "Error",
}

# Webhook events set aside (templates/config/webhook_events.html).
WEBHOOK_EVENTS = {
    "events_title": "Webhooks apartados",
    "events_hint": "Actualizaciones de Meta o Twilio que no se pudieron guardar, enteras o en parte. El cuerpo "
                   "original se conserva: tras corregir la causa, reintente; lo ya guardado no se repite.",
    "events_none": "No hay actualizaciones apartadas.",
    "events_id": "Evento", "events_source": "Origen", "events_kind": "Contenido", "events_received": "Recibido",
    "events_problem": "Problema", "events_where": "Parte", "events_retry": "Reintentar",
    "events_retry_all": "Reintentar todos", "events_requeued": "{count} evento(s) vuelven al diario.",
    "events_raw": "Cuerpo original",
}

# The areas whose texts scripts read from the #ui-texts blob.
SCRIPT_AREAS = (PANEL, SIMULATOR_SCRIPT, TABLERO_SCRIPT)
AREAS = SCRIPT_AREAS + (COMMON, LOGIN, RULES, ROLES, QUICK_REPLIES, SIMULATOR, TABLERO, WEBHOOK_EVENTS)

ES = {key: text for area in AREAS for key, text in area.items()}
SCRIPT_KEYS = frozenset(key for area in SCRIPT_AREAS for key in area)

LANGUAGES = {"es": ES}


def for_scripts(texts: dict[str, str]) -> dict[str, str]:
    """The part of `texts` that scripts read (the #ui-texts blob): not the texts only templates use."""
    return {key: text for key, text in texts.items() if key in SCRIPT_KEYS}


def texts_for(language: str | None = None) -> dict[str, str]:
    """The texts in `language`, falling back to Spanish for an unknown language or a missing key."""
    chosen = LANGUAGES.get(language or DEFAULT_LANGUAGE, ES)
    return chosen if chosen is ES else {**ES, **chosen}
